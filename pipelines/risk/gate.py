"""The pre-trade gate: every plan passes it before any order exists.

Checks (limits from settings): kill switch off; no weight above ``MAX_WEIGHT``; gross exposure
at most 1 (long-only, no leverage); no order above ``MAX_ORDER_NOTIONAL``; at most
``MAX_ORDERS_PER_RUN`` orders. The report is stored in ``plans.risk_report``; a breach marks
the plan ``blocked`` and raises. Fail closed: an error while checking also blocks.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import sqlalchemy as sa

from pipelines import calendar
from pipelines.config import Settings
from pipelines.errors import RiskLimitBreached
from pipelines.execution.brokers.base import Broker
from pipelines.execution.orders import last_closes, plan_orders
from pipelines.portfolio.planner import PlanRef, target_weights
from pipelines.risk.kill_switch import kill_switch_status

TOLERANCE = 1e-9


@dataclass
class RiskReport:
    approved: bool
    breaches: list[str] = field(default_factory=list)
    max_weight: float = 0.0
    gross_exposure: float = 0.0
    orders: int = 0
    max_order_notional: float = 0.0


def check_plan(engine: sa.Engine, settings: Settings, plan: PlanRef, broker: Broker) -> RiskReport:
    """Approve or block ``plan``; raises RiskLimitBreached listing every breach."""
    status, stored = _current(engine, plan)
    if status == "submitted":  # a rerun after orders exist: the decision stands
        return RiskReport(**stored)
    try:
        report = _evaluate(engine, settings, plan, broker)
    except Exception as exc:  # fail closed
        report = RiskReport(approved=False, breaches=[f"risk check failed: {exc}"])
    _store(engine, plan, report)
    if not report.approved:
        raise RiskLimitBreached(
            f"plan {plan.session_date} v{plan.plan_version} blocked: " + "; ".join(report.breaches)
        )
    return report


def _evaluate(engine: sa.Engine, settings: Settings, plan: PlanRef, broker: Broker) -> RiskReport:
    weights = target_weights(engine, plan)
    intents = plan_orders(engine, settings, plan, broker)
    prices = last_closes(
        engine, calendar.previous_session(plan.session_date), [i.symbol for i in intents]
    )
    notionals = [float(i.qty) * prices[i.symbol] for i in intents]
    report = RiskReport(
        approved=True,
        max_weight=float(weights.max()) if len(weights) else 0.0,
        gross_exposure=float(weights.abs().sum()),
        orders=len(intents),
        max_order_notional=max(notionals, default=0.0),
    )
    enabled, reason, _ = kill_switch_status(engine)
    report.breaches = limit_breaches(settings, report, enabled, reason)
    report.approved = not report.breaches
    return report


def limit_breaches(
    settings: Settings, report: RiskReport, kill_switch_on: bool = False, reason: str | None = None
) -> list[str]:
    """The limits ``report``'s figures breach (no I/O: the gate and the backtest share it)."""
    checks = [
        (kill_switch_on, f"kill switch is on ({reason})"),
        (
            report.max_weight > settings.max_weight + TOLERANCE,
            f"weight {report.max_weight:.4f} above MAX_WEIGHT {settings.max_weight}",
        ),
        (
            report.gross_exposure > 1 + TOLERANCE,
            f"gross exposure {report.gross_exposure:.4f} above 1",
        ),
        (
            report.max_order_notional > settings.max_order_notional,
            f"order of {report.max_order_notional:,.0f} USD above MAX_ORDER_NOTIONAL "
            f"{settings.max_order_notional:,.0f}",
        ),
        (
            report.orders > settings.max_orders_per_run,
            f"{report.orders} orders above MAX_ORDERS_PER_RUN {settings.max_orders_per_run}",
        ),
    ]
    return [message for breached, message in checks if breached]


def _current(engine: sa.Engine, plan: PlanRef) -> tuple[str, dict]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(f"SELECT status, risk_report FROM plans WHERE {PlanRef.WHERE}"),
            plan.params(),
        ).one()
    return row.status, row.risk_report


def _store(engine: sa.Engine, plan: PlanRef, report: RiskReport) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE plans SET status = :st, risk_report = CAST(:r AS jsonb) "
                f"WHERE {PlanRef.WHERE}"
            ),
            {
                "st": "approved" if report.approved else "blocked",
                "r": json.dumps(asdict(report)),
                **plan.params(),
            },
        )
