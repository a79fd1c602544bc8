"""What the gate decided about a session's latest plan: status, risk report, stress results."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from pipelines.portfolio.planner import PlanRef, latest_plan


def plan_risk(engine: sa.Engine, strategy: str, session_date: date) -> dict:
    """The latest plan's status, ``risk_report`` and ``plan_stress`` rows (losses positive)."""
    plan = latest_plan(engine, strategy, session_date)
    if plan is None:
        return {"strategy": strategy, "session_date": session_date.isoformat(), "plan": None}
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(f"SELECT status, risk_report FROM plans WHERE {PlanRef.WHERE}"), plan.params()
        ).one()
        stress = conn.execute(
            sa.text(
                "SELECT scenario, kind, covered, loss, start_date, end_date FROM plan_stress "
                f"WHERE {PlanRef.WHERE} ORDER BY kind, scenario"
            ),
            plan.params(),
        ).all()
    return {
        "strategy": strategy,
        "session_date": session_date.isoformat(),
        "plan_version": plan.plan_version,
        "status": row.status,
        "risk_report": row.risk_report,
        "stress": [
            {
                "scenario": r.scenario,
                "kind": r.kind,
                "covered": r.covered,
                "loss": r.loss,
                "window": None if r.start_date is None else f"{r.start_date}..{r.end_date}",
            }
            for r in stress
        ],
    }
