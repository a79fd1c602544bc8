"""Circuit breakers: realized losses past their limits halt planning.

The daily loss and the drawdown (``DAILY_LOSS_LIMIT``, ``MAX_DRAWDOWN``) are figures of the
book's realized equity (:mod:`pipelines.risk.pnl`), not of a plan: while either is past its
limit the gate refuses every plan, and scaling a plan cannot bring them back. So the money
path checks them before it plans (:func:`pipelines.session.before_planning`) and stops with
:class:`~pipelines.errors.LossLimitBreached`: nothing is planned or sent. The gate reports and
checks the same figures for each plan it judges (:func:`loss_checks`).

The drawdown is measured from the peak of realized equity and does not reset by itself:
trading resumes when a person has decided what the book should do and raises the limit.
Losses are positive fractions of equity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from pipelines.errors import LossLimitBreached
from pipelines.risk import pnl
from pipelines.risk.limits import RiskLimits
from pipelines.warehouse import accounts


@dataclass(frozen=True)
class Losses:
    daily_loss: float  # the last session's loss
    drawdown: float  # from the peak of realized equity (the initial cash counts as one)


def realized_losses(engine: sa.Engine, broker: str, initial_capital: float, as_of: date) -> Losses:
    """``broker``'s realized losses at ``as_of``'s close, measured from its account's initial
    cash (``initial_capital`` when the account has no row)."""
    initial = accounts.initial_cash(engine, broker)
    initial = initial_capital if initial is None else initial
    curve = pnl.equity_curve(engine, initial, as_of)
    return Losses(*pnl.daily_loss_and_drawdown(curve, initial))


def loss_checks(limits: RiskLimits, losses: Losses) -> list[tuple[bool, str]]:
    """Each loss limit: (breached, what it says)."""
    return [
        (
            losses.daily_loss > limits.daily_loss_limit,
            f"daily loss {losses.daily_loss:.2%} above DAILY_LOSS_LIMIT "
            f"{limits.daily_loss_limit:.2%}",
        ),
        (
            losses.drawdown > limits.max_drawdown,
            f"drawdown {losses.drawdown:.2%} above MAX_DRAWDOWN {limits.max_drawdown:.2%}",
        ),
    ]


def require_within_loss_limits(
    engine: sa.Engine, limits: RiskLimits, broker: str, initial_capital: float, as_of: date
) -> Losses:
    """Raise :class:`LossLimitBreached` when a loss limit is breached at ``as_of``'s close;
    return the losses otherwise."""
    losses = realized_losses(engine, broker, initial_capital, as_of)
    breached = [message for hit, message in loss_checks(limits, losses) if hit]
    if breached:
        raise LossLimitBreached(
            f"circuit breaker: {'; '.join(breached)} (realized equity at the {as_of} close): "
            "nothing was planned or sent. Decide what the book should do, then raise the "
            "limit to trade again (docs/risk.md)"
        )
    return losses
