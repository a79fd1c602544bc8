"""The pre-trade gate: every plan passes it before any order exists.

Checks (limits: :class:`pipelines.risk.limits.RiskLimits`, from the settings; losses and
exposures are positive fractions of equity):

* kill switch off;
* data quality: the latest ingest run that validated the plan's data date (the session before
  the plan's) passed in every batch — no validation run at all blocks (fail closed);
* daily loss ≤ ``DAILY_LOSS_LIMIT`` and drawdown ≤ ``MAX_DRAWDOWN``, from realized P&L
  (:mod:`pipelines.risk.pnl`: fills, then closes); the money path checks these two before it
  plans too (:mod:`pipelines.risk.breakers`), so a plan rarely meets them here;
* concentration: no weight above ``MAX_WEIGHT``, no sector's net weight above
  ``SECTOR_MAX_WEIGHT`` (when set);
* gross exposure ``Σ|w| ≤ GROSS_LEVERAGE`` (1 when unset);
* VaR (``VAR_METHOD`` at ``VAR_CONFIDENCE`` over ``VAR_HORIZON_DAYS``, on the trailing window of
  daily returns) ≤ ``MAX_VAR``;
* no order above ``MAX_ORDER_NOTIONAL``; at most ``MAX_ORDERS_PER_RUN`` orders.

Stress results (:mod:`pipelines.risk.stress`) are computed and stored in ``plan_stress`` with
every evaluation; the worst loss is in the report but is not a limit.

``RISK_BREACH_ACTION=block``: a breach marks the plan ``blocked`` and raises.
``RISK_BREACH_ACTION=scale``: when every breach is of a limit that shrinks with the book
(VaR, gross, position and sector concentration — all positively homogeneous in the weights),
the target weights are multiplied by the largest factor ``s < 1`` that brings each inside its
limit (``s = min(limit / value)``, times 0.999 for round-off), rewritten (before the
report is stored; a rerun checks the scaled plan again) and checked again; anything else
(kill switch, data quality, loss limits, order notional or count) still blocks. The
report — with ``scale`` and the breaches that caused it — goes to ``plans.risk_report`` and
the log. Fail closed: an error while checking is a block.

State: the gate decides a ``proposed`` or ``blocked`` plan; an ``approved`` or ``submitted``
plan's decision stands (a rerun returns the stored report and computes nothing). Approval
stores the plan's orders (``plan_orders``, from one broker snapshot) in the same transaction
that moves the status: those, and only those, are what submission sends. Every status write
is a guarded move (:mod:`pipelines.portfolio.plan_state`): a gate whose view of the plan is
stale fails with :class:`PlanConflict` and writes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import date

import pandas as pd
import sqlalchemy as sa

from pipelines import calendar
from pipelines.config import Settings
from pipelines.controls import kill_switch_status
from pipelines.errors import PlanConflict, RiskLimitBreached
from pipelines.execution.brokers.base import Broker, OrderIntent
from pipelines.execution.orders import freeze_orders, plan_orders
from pipelines.portfolio import plan_state
from pipelines.portfolio.risk_model import ledoit_wolf, trailing_returns
from pipelines.portfolio.sectors import sector_map
from pipelines.risk import breakers, stress
from pipelines.risk.limits import RiskLimits
from pipelines.risk.var import VaRResult, portfolio_var
from pipelines.warehouse import plans, validation
from pipelines.warehouse.plans import PlanRef
from pipelines.warehouse.prices import last_closes

TOLERANCE = 1e-9
SCALE_MARGIN = 0.999
log = logging.getLogger(__name__)


@dataclass
class RiskReport:
    approved: bool
    breaches: list[str] = field(default_factory=list)
    max_weight: float = 0.0
    max_sector_weight: float = 0.0
    gross_exposure: float = 0.0
    orders: int = 0
    max_order_notional: float = 0.0
    var: float = 0.0
    cvar: float = 0.0
    var_method: str = ""
    daily_loss: float = 0.0
    drawdown: float = 0.0
    data_quality: str = ""
    stress_worst_loss: float = 0.0  # worst plan_stress loss (reported, not a limit)
    action: str = "none"  # none | blocked | scaled
    scale: float = 1.0
    scaled_for: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Check:
    breached: bool
    message: str
    ratio: float | None = None  # value / limit when the breach can be scaled away


def check_plan(engine: sa.Engine, settings: Settings, plan: PlanRef, broker: Broker) -> RiskReport:
    """Approve (possibly scaled) or block ``plan``; raises RiskLimitBreached listing breaches."""
    status, stored = plans.decision(engine, plan)
    if status in (plan_state.APPROVED, plan_state.SUBMITTED):  # the decision stands
        return RiskReport(**stored) if stored else RiskReport(approved=True)
    if status not in (plan_state.PROPOSED, plan_state.BLOCKED):
        raise PlanConflict(
            f"plan {plan.session_date} v{plan.plan_version} is {status}: a newer version "
            "replaced it; gate the latest plan (`mltrade rebalance` picks it)"
        )
    previous_scale = float((stored or {}).get("scale", 1.0))
    limits = RiskLimits.from_settings(settings)
    intents: list[OrderIntent] = []
    try:
        report, checks, intents = _evaluate(engine, settings, plan, broker)
        report.scale = previous_scale
        if report.breaches and limits.breach_action == "scale":
            report, intents = _scale(engine, settings, plan, broker, report, checks, intents)
    except PlanConflict:
        raise
    except Exception as exc:  # fail closed
        report = RiskReport(approved=False, breaches=[f"risk check failed: {exc}"])
    if not report.approved:
        report.action = "blocked"
    _store(engine, plan, report, status, intents)
    log.info(
        "risk gate strategy=%s session_date=%s plan_version=%s approved=%s action=%s scale=%.4f "
        "breaches=%s",
        plan.strategy,
        plan.session_date,
        plan.plan_version,
        report.approved,
        report.action,
        report.scale,
        report.breaches,
    )
    if not report.approved:
        raise RiskLimitBreached(
            f"plan {plan.session_date} v{plan.plan_version} blocked: " + "; ".join(report.breaches)
        )
    return report


def _scale(
    engine: sa.Engine,
    settings: Settings,
    plan: PlanRef,
    broker: Broker,
    report: RiskReport,
    checks: list[_Check],
    intents: list[OrderIntent],
) -> tuple[RiskReport, list[OrderIntent]]:
    breached = [c for c in checks if c.breached]
    if any(c.ratio is None for c in breached):
        return report, intents  # something scaling cannot fix: block
    factor = SCALE_MARGIN / max(c.ratio for c in breached if c.ratio is not None)
    weights = plans.target_weights(engine, plan) * factor
    _write_weights(engine, plan, weights)
    scaled, _, scaled_intents = _evaluate(engine, settings, plan, broker)
    scaled.scale = report.scale * factor
    scaled.scaled_for = report.breaches
    scaled.action = "scaled" if scaled.approved else "blocked"
    return scaled, scaled_intents


def _evaluate(
    engine: sa.Engine, settings: Settings, plan: PlanRef, broker: Broker
) -> tuple[RiskReport, list[_Check], list[OrderIntent]]:
    as_of = calendar.previous_session(plan.session_date)
    weights = plans.target_weights(engine, plan)
    intents = plan_orders(engine, settings, plan, broker)
    prices = last_closes(engine, as_of, [i.symbol for i in intents])
    notionals = [float(i.qty) * prices[i.symbol] for i in intents]
    sectors = sector_map(list(weights.index))
    by_sector = weights.groupby(pd.Series({s: sectors.get(s, "") for s in weights.index})).sum()
    limits = RiskLimits.from_settings(settings)
    var, worst, missing = _market_risk(engine, limits, plan, weights, as_of)
    losses = breakers.realized_losses(engine, broker.name, settings.initial_capital, as_of)
    quality_ok, quality = _data_quality(engine, as_of)
    report = RiskReport(
        approved=True,
        max_weight=float(weights.abs().max()) if len(weights) else 0.0,
        max_sector_weight=float(by_sector.abs().max()) if len(by_sector) else 0.0,
        gross_exposure=float(weights.abs().sum()),
        orders=len(intents),
        max_order_notional=max(notionals, default=0.0),
        var=var.var,
        cvar=var.cvar,
        var_method=f"{var.method} {var.confidence:.3g} {var.horizon_days}d",
        daily_loss=losses.daily_loss,
        drawdown=losses.drawdown,
        data_quality=quality,
        stress_worst_loss=worst,
    )
    enabled, reason, _ = kill_switch_status(engine)
    checks = limit_checks(limits, report, enabled, reason, quality_ok, missing)
    report.breaches = [c.message for c in checks if c.breached]
    report.approved = not report.breaches
    return report, checks, intents


def limit_checks(
    limits: RiskLimits,
    report: RiskReport,
    kill_switch_on: bool = False,
    reason: str | None = None,
    quality_ok: bool = True,
    missing: float = 0.0,
) -> list[_Check]:
    """Every limit checked against ``report``'s figures, no I/O. ``missing``: the plan's
    weight with no full return history."""
    gross_limit = limits.gross_leverage
    checks = [
        _Check(kill_switch_on, f"kill switch is on ({reason})"),
        _Check(not quality_ok, f"data quality gate: {report.data_quality}"),
        _Check(missing > TOLERANCE, f"{missing:.4f} of the plan has no full return history"),
        *(
            _Check(hit, message)
            for hit, message in breakers.loss_checks(
                limits, breakers.Losses(report.daily_loss, report.drawdown)
            )
        ),
        _Check(
            report.max_weight > limits.max_weight + TOLERANCE,
            f"weight {report.max_weight:.4f} above MAX_WEIGHT {limits.max_weight}",
            report.max_weight / limits.max_weight,
        ),
        _Check(
            report.gross_exposure > gross_limit + TOLERANCE,
            f"gross exposure {report.gross_exposure:.4f} above {gross_limit}",
            report.gross_exposure / gross_limit,
        ),
        _Check(
            report.var > limits.max_var,
            f"VaR {report.var:.2%} ({report.var_method}) above MAX_VAR {limits.max_var:.2%}",
            report.var / limits.max_var,
        ),
        _Check(
            report.max_order_notional > limits.max_order_notional,
            f"order of {report.max_order_notional:,.0f} USD above MAX_ORDER_NOTIONAL "
            f"{limits.max_order_notional:,.0f}",
        ),
        _Check(
            report.orders > limits.max_orders_per_run,
            f"{report.orders} orders above MAX_ORDERS_PER_RUN {limits.max_orders_per_run}",
        ),
    ]
    if limits.sector_max_weight is not None:
        checks.append(
            _Check(
                report.max_sector_weight > limits.sector_max_weight + TOLERANCE,
                f"sector weight {report.max_sector_weight:.4f} above SECTOR_MAX_WEIGHT "
                f"{limits.sector_max_weight}",
                report.max_sector_weight / limits.sector_max_weight,
            )
        )
    return checks


def _market_risk(
    engine: sa.Engine, limits: RiskLimits, plan: PlanRef, weights: pd.Series, as_of: date
) -> tuple[VaRResult, float, float]:
    """VaR of the plan, its worst stress loss (stored in plan_stress) and the weight that
    has no full return window. An empty plan (everything to cash) has no market risk."""
    if weights.abs().sum() == 0:
        stress.store(engine, plan, [])
        zero = VaRResult(
            limits.var_method, limits.var_confidence, limits.var_horizon_days, 0.0, 0.0
        )
        return zero, 0.0, 0.0
    returns = trailing_returns(engine, as_of, list(weights.index))
    aligned = weights.reindex(returns.columns).fillna(0.0).to_numpy()
    missing = float(weights.drop(returns.columns, errors="ignore").abs().sum())
    risk = ledoit_wolf(returns)
    scenarios = (
        stress.historical(engine, weights)
        + stress.index_replays(weights, returns)
        + stress.factor_shocks(weights, risk)
    )
    stress.store(engine, plan, scenarios)
    worst = max((r.loss for r in scenarios if r.loss is not None), default=0.0)
    var = portfolio_var(
        limits.var_method,
        aligned,
        returns.to_numpy(),
        risk if limits.var_method == "monte_carlo" else None,
        limits.var_confidence,
        limits.var_horizon_days,
    )
    return var, worst, missing


def _data_quality(engine: sa.Engine, as_of: date) -> tuple[bool, str]:
    """Whether the latest ingest run that validated ``as_of`` passed in every batch.

    Fail closed: with no validation run covering ``as_of`` the plan's prices were never
    checked, and the plan is blocked.
    """
    row = validation.latest_covering(engine, as_of)
    if row is None:
        return False, (
            f"no validation run covers {as_of}: load the data through the gate "
            "(`mltrade ingest`) before trading on it"
        )
    if not row.success:
        return False, (
            f"validation run {row.run_id} for {as_of} failed ({row.rows_failed} of "
            f"{row.rows_checked} rows); fix the data and re-ingest before trading"
        )
    return True, f"validation run {row.run_id} passed"


def _write_weights(engine: sa.Engine, plan: PlanRef, weights: pd.Series) -> None:
    """Scaled targets replace the plan's (only before any order exists: status proposed)."""
    with engine.begin() as conn:
        status = plans.locked_status(conn, plan)
        if status not in (plan_state.PROPOSED, plan_state.BLOCKED):
            raise PlanConflict(f"plan is {status} now: its weights cannot be scaled")
        plans.set_weights(conn, plan, weights)


def _store(
    engine: sa.Engine,
    plan: PlanRef,
    report: RiskReport,
    expected: str,
    intents: list[OrderIntent],
) -> None:
    """The decision, moved from ``expected`` (guarded); an approval freezes ``intents``."""
    with engine.begin() as conn:
        new = plan_state.APPROVED if report.approved else plan_state.BLOCKED
        plan_state.move(conn, plan, {expected}, new)
        plans.set_risk_report(conn, plan, asdict(report))
        if report.approved:
            freeze_orders(conn, plan, intents)
