"""The pre-trade gate's limits, as one typed value taken from the settings.

Losses, exposures and VaR are positive fractions of equity; notionals are USD. The env names
stay the flat settings' (``MAX_WEIGHT``, ``MAX_VAR``, …, docs/configuration.md); domain code
that only checks limits takes a :class:`RiskLimits` instead of the whole ``Settings``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pipelines.config import Settings


@dataclass(frozen=True)
class RiskLimits:
    max_weight: float  # MAX_WEIGHT, per position
    gross_leverage: float  # GROSS_LEVERAGE, Σ|w|; 1 when unset
    sector_max_weight: float | None  # SECTOR_MAX_WEIGHT, net per sector; None: unchecked
    max_var: float  # MAX_VAR
    var_method: str  # VAR_METHOD
    var_confidence: float  # VAR_CONFIDENCE
    var_horizon_days: int  # VAR_HORIZON_DAYS, sessions
    daily_loss_limit: float  # DAILY_LOSS_LIMIT
    max_drawdown: float  # MAX_DRAWDOWN, from the peak of realized equity
    max_order_notional: float  # MAX_ORDER_NOTIONAL, USD per order
    max_orders_per_run: int  # MAX_ORDERS_PER_RUN
    breach_action: Literal["block", "scale"]  # RISK_BREACH_ACTION

    @classmethod
    def from_settings(cls, settings: Settings) -> RiskLimits:
        return cls(
            max_weight=settings.max_weight,
            gross_leverage=settings.gross_leverage or 1.0,
            sector_max_weight=settings.sector_max_weight,
            max_var=settings.max_var,
            var_method=settings.var_method,
            var_confidence=settings.var_confidence,
            var_horizon_days=settings.var_horizon_days,
            daily_loss_limit=settings.daily_loss_limit,
            max_drawdown=settings.max_drawdown,
            max_order_notional=settings.max_order_notional,
            max_orders_per_run=settings.max_orders_per_run,
            breach_action=settings.risk_breach_action,
        )
