"""Human approval of a plan before its orders go out: when it is needed and what it shows.

A plan waits for a person (the Airflow UI's human-in-the-loop step) when the risk gate scaled
it down, when trading is live, or always with ``REBALANCE_APPROVAL=always``. A paper plan the
gate approved unchanged goes out on its own (``REBALANCE_APPROVAL=when_needed``, the default).

The summary a reviewer sees: the largest target weights (fractions of equity), one-way
turnover against the previous plan's targets (``½ Σ |w_new − w_prev|``; the first plan's is
its gross exposure over two), the gate's VaR and CVaR (fractions of equity over
``VAR_HORIZON_DAYS``, losses positive) and the stress scenarios' losses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

import sqlalchemy as sa

from pipelines.risk.report import plan_risk
from pipelines.warehouse import plans
from pipelines.warehouse.plans import PlanRef


@dataclass(frozen=True)
class ApprovalDecision:
    """Whether a plan waits for a person, why, and the summary shown to them (Markdown)."""

    required: bool
    reason: str
    summary: str

    def as_dict(self) -> dict:
        return asdict(self)


def approval_reason(gate_report: dict, trading_mode: str, mode: str) -> str | None:
    """Why this plan needs a person's approval, or None when it may go out on its own."""
    if mode == "always":
        return "REBALANCE_APPROVAL=always: every plan waits for approval"
    if trading_mode == "live":
        return "live trading: every plan waits for approval"
    if gate_report.get("action") == "scaled":
        return (
            f"the risk gate scaled the plan to {float(gate_report.get('scale', 1.0)):.0%} "
            f"for {', '.join(gate_report.get('scaled_for') or ['a breach'])}"
        )
    return None


def plan_summary(engine: sa.Engine, plan_key: dict, top: int = 10) -> dict:
    """Top weights, turnover, VaR/CVaR and stress losses of the plan ``plan_key`` names."""
    strategy, day = str(plan_key["strategy"]), date.fromisoformat(str(plan_key["session_date"]))
    version = int(plan_key["plan_version"])
    weights = plans.target_weights(engine, PlanRef(strategy, day, version)).to_dict()
    before = plans.latest_before(engine, strategy, day)
    previous = {} if before is None else plans.target_weights(engine, before).to_dict()
    symbols = set(weights) | set(previous)
    turnover = 0.5 * sum(abs(weights.get(s, 0.0) - previous.get(s, 0.0)) for s in symbols)
    risk = plan_risk(engine, strategy, day)
    report = risk.get("risk_report") or {}
    ranked = sorted(weights.items(), key=lambda kv: (-abs(kv[1]), kv[0]))
    return {
        "strategy": strategy,
        "session_date": day.isoformat(),
        "plan_version": version,
        "positions": len(weights),
        "top_weights": dict(ranked[:top]),
        "turnover": turnover,
        "var": float(report.get("var", 0.0)),
        "cvar": float(report.get("cvar", 0.0)),
        "gross_exposure": float(report.get("gross_exposure", sum(map(abs, weights.values())))),
        "action": report.get("action", "none"),
        "scale": float(report.get("scale", 1.0)),
        "stress": [{"scenario": s["scenario"], "loss": s["loss"]} for s in risk.get("stress", [])],
    }


def _loss(value: float | None) -> str:
    return "n/a" if value is None else f"{float(value):.2%}"


def summary_markdown(summary: dict, reason: str) -> str:
    """The reviewer's view of a plan, as Markdown (Airflow renders it in the approval form)."""
    lines = [
        f"**Why approval is needed:** {reason}",
        "",
        f"Plan {summary['strategy']} for the {summary['session_date']} open "
        f"(version {summary['plan_version']}): {summary['positions']} positions, "
        f"gross exposure {summary['gross_exposure']:.1%}, one-way turnover "
        f"{summary['turnover']:.1%}, VaR {summary['var']:.2%}, CVaR {summary['cvar']:.2%}"
        f" (gate action: {summary['action']}, scale {summary['scale']:.2f}).",
        "",
        "| symbol | target weight |",
        "|---|---:|",
        *(f"| {sym} | {w:.2%} |" for sym, w in summary["top_weights"].items()),
    ]
    if summary["stress"]:
        lines += ["", "| stress scenario | loss |", "|---|---:|"]
        lines += [f"| {s['scenario']} | {_loss(s['loss'])} |" for s in summary["stress"]]
    lines += ["", "Approve sends the orders; Reject (or no answer in time) sends nothing."]
    return "\n".join(lines)


def decide(
    engine: sa.Engine, plan_key: dict, gate_report: dict, trading_mode: str, mode: str
) -> ApprovalDecision:
    """Whether ``plan_key``'s plan waits for a person, and its summary either way."""
    reason = approval_reason(gate_report, trading_mode, mode)
    summary = plan_summary(engine, plan_key)
    text = summary_markdown(summary, reason or "not needed: paper trading, gate unchanged")
    return ApprovalDecision(required=reason is not None, reason=reason or "", summary=text)
