"""Portfolio construction's settings, as one typed value taken from the settings.

Weights are fractions of equity; ``risk_aversion`` is in the objective's units (daily return
per unit of daily variance). The env names stay the flat settings' (``OPTIMIZER``,
``MAX_WEIGHT``, ``TURNOVER_LIMIT``, …, docs/portfolio.md); the planner's pure functions take
an :class:`OptimizerConfig` instead of the whole ``Settings``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipelines.portfolio.constraints import Constraints, Mode
from pipelines.portfolio.sectors import sector_map

if TYPE_CHECKING:
    from pipelines.config import Settings


@dataclass(frozen=True)
class OptimizerConfig:
    method: str  # OPTIMIZER
    risk_aversion: float  # RISK_AVERSION
    solver: str  # SOLVER
    risk_model: str  # RISK_MODEL: auto | ipca | ledoit_wolf
    mode: Mode  # PORTFOLIO_MODE
    max_weight: float  # MAX_WEIGHT, per position
    cash_buffer: float  # CASH_BUFFER, kept out of a long-only book
    gross_leverage: float | None  # GROSS_LEVERAGE, Σ|w|
    sector_max_weight: float | None  # SECTOR_MAX_WEIGHT, net per sector
    factor_exposure_bound: float | None  # FACTOR_EXPOSURE_BOUND, per factor
    turnover_limit: float | None  # TURNOVER_LIMIT, Σ|w − w₀|
    turnover_penalty: float  # TURNOVER_PENALTY, objective units per unit traded
    min_trade_weight: float  # MIN_TRADE_WEIGHT
    max_order_notional: float  # MAX_ORDER_NOTIONAL, USD per order (the gate's limit)

    @classmethod
    def from_settings(cls, settings: Settings) -> OptimizerConfig:
        return cls(
            method=settings.optimizer,
            risk_aversion=settings.risk_aversion,
            solver=settings.solver,
            risk_model=settings.risk_model,
            mode=settings.portfolio_mode,
            max_weight=settings.max_weight,
            cash_buffer=settings.cash_buffer,
            gross_leverage=settings.gross_leverage,
            sector_max_weight=settings.sector_max_weight,
            factor_exposure_bound=settings.factor_exposure_bound,
            turnover_limit=settings.turnover_limit,
            turnover_penalty=settings.turnover_penalty,
            min_trade_weight=settings.min_trade_weight,
            max_order_notional=settings.max_order_notional,
        )

    def constraints(
        self, symbols: list[str], factor_loadings: np.ndarray | None = None
    ) -> Constraints:
        """The constraint set for ``symbols`` in the risk model's order; ``factor_loadings``
        (N×K, same order) are bounded only when ``factor_exposure_bound`` is set."""
        long_only = self.mode == "long_only"
        return Constraints(
            mode=self.mode,
            max_weight=self.max_weight,
            budget=1 - self.cash_buffer if long_only else 0.0,
            gross_leverage=self.gross_leverage,
            sectors=sector_map(symbols) if self.sector_max_weight else {},
            sector_max_weight=self.sector_max_weight,
            factor_loadings=factor_loadings if self.factor_exposure_bound else None,
            factor_bound=self.factor_exposure_bound,
            turnover_limit=self.turnover_limit,
            turnover_penalty=self.turnover_penalty,
            min_trade=self.min_trade_weight,
        )
