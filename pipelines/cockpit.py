"""What the Airflow UI's mltrade page shows: the latest plan, its risk report, its orders, the
positions and P&L, and the kill switch.

"Today's plan" is the newest plan of ``STRATEGY`` in the warehouse (offline, the sample's last
traded session). Weights are fractions of equity; money is US dollars; P&L is equity minus the
initial capital, valued at the newest close.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from pipelines.approval import plan_summary
from pipelines.config import Settings
from pipelines.execution.brokers.base import Broker
from pipelines.execution.reconcile import portfolio_summary
from pipelines.risk.kill_switch import kill_switch_status
from pipelines.risk.report import plan_risk
from pipelines.warehouse import accounts, bars, orders, plans


def _latest_plan(engine: sa.Engine, strategy: str) -> dict | None:
    found = plans.newest(engine, strategy)
    if found is None:
        return None
    plan, status = found
    return {
        "strategy": strategy,
        "session_date": plan.session_date.isoformat(),
        "plan_version": plan.plan_version,
        "status": status,
    }


def _orders(conn: sa.Connection, strategy: str, day: str) -> list[dict]:
    return [
        {
            "client_order_id": r.client_order_id,
            "symbol": r.symbol,
            "side": r.side,
            "qty": float(r.qty),
            "status": r.status,
        }
        for r in orders.of_session(conn, strategy, date.fromisoformat(day))
    ]


def _positions(conn: sa.Connection, broker: str) -> list[dict]:
    return [
        {"symbol": r.symbol, "qty": float(r.qty), "avg_price": r.avg_price}
        for r in accounts.held(conn, broker)
    ]


def links(settings: Settings) -> dict[str, str]:
    """The MLflow and Grafana addresses to link to (empty when not configured)."""
    mlflow = settings.mlflow_ui_url or (
        settings.mlflow_tracking_uri
        if settings.mlflow_tracking_uri.startswith(("http://", "https://"))
        else ""
    )
    grafana = (
        settings.grafana_url.rstrip("/") + "/dashboards/f/mltrade" if settings.grafana_url else ""
    )
    return {"mlflow": mlflow, "grafana": grafana}


def snapshot(engine: sa.Engine, settings: Settings, broker: Broker) -> dict:
    """Everything the cockpit page shows, as plain data."""
    plan = _latest_plan(engine, settings.strategy)
    with engine.connect() as conn:
        session_orders = _orders(conn, settings.strategy, plan["session_date"]) if plan else []
        positions = _positions(conn, broker.name)
        newest = bars.newest_close_day(conn)
    enabled, reason, since = kill_switch_status(engine)
    summary = plan_summary(engine, plan) if plan else None
    risk = (
        plan_risk(engine, settings.strategy, date.fromisoformat(plan["session_date"]))
        if plan
        else None
    )
    return {
        "plan": plan,
        "summary": summary,
        "risk": risk,
        "orders": session_orders,
        "positions": positions,
        "portfolio": portfolio_summary(engine, broker, settings, newest) if newest else None,
        "kill_switch": {
            "enabled": enabled,
            "reason": reason,
            "since": since.isoformat() if since else None,
        },
        "links": links(settings),
        "trading_mode": settings.trading_mode,
        "broker": broker.name,
    }
