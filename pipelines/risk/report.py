"""What the gate decided about a session's latest plan: status, risk report, stress results."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from pipelines.warehouse import plans


def plan_risk(engine: sa.Engine, strategy: str, session_date: date) -> dict:
    """The latest plan's status, ``risk_report`` and ``plan_stress`` rows (losses positive)."""
    plan = plans.latest(engine, strategy, session_date)
    if plan is None:
        return {"strategy": strategy, "session_date": session_date.isoformat(), "plan": None}
    status, risk_report = plans.decision(engine, plan)
    stress = plans.stress(engine, plan)
    return {
        "strategy": strategy,
        "session_date": session_date.isoformat(),
        "plan_version": plan.plan_version,
        "status": status,
        "risk_report": risk_report,
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
