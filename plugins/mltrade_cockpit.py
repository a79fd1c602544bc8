"""The cockpit: a page in the Airflow UI (``/mltrade/``, menu "mltrade cockpit") showing today's
plan, the risk report, orders and their states, positions and P&L, the kill switch with its
reason, and links to MLflow and Grafana.

A FastAPI app the plugin mounts on Airflow's API server; every route needs a logged-in Airflow
user (the UI's session cookie or a bearer token). The data comes from ``jobs.cockpit()``; this
module only renders it. ``/mltrade/snapshot`` serves the same data as JSON.
"""

from __future__ import annotations

from html import escape
from typing import Any

from airflow.api_fastapi.core_api.security import requires_authenticated
from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse

app = FastAPI(
    title="mltrade cockpit",
    dependencies=[Depends(requires_authenticated())],
)

STYLE = """
body{font-family:system-ui,sans-serif;margin:1rem 1.5rem;color:#1a202c}
h1{font-size:1.3rem}h2{font-size:1.05rem;margin-top:1.4rem}
table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid #cbd5e0;padding:.2rem .5rem}
th{background:#edf2f7;text-align:left}td.num{text-align:right}
.on{color:#c53030;font-weight:bold}.off{color:#2f855a;font-weight:bold}
.muted{color:#718096}
"""


def _table(headers: list[str], rows: list[list[Any]], table_id: str) -> str:
    if not rows:
        return f'<p id="{table_id}" class="muted">none</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{v:,.4g}</td>'
            if isinstance(v, float)
            else f"<td>{escape(str(v))}</td>"
            for v in row
        )
        + "</tr>"
        for row in rows
    )
    return f'<table id="{table_id}"><tr>{head}</tr>{body}</table>'


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.2%}"


def _plan(data: dict) -> str:
    plan, summary = data["plan"], data["summary"]
    if not plan:
        return '<p id="plan" class="muted">no plan yet: run premarket_rebalance</p>'
    weights = [[sym, f"{w:.2%}"] for sym, w in summary["top_weights"].items()]
    return (
        f'<p id="plan">{escape(plan["strategy"])} for the {escape(plan["session_date"])} open, '
        f"version {plan['plan_version']}: <b>{escape(plan['status'])}</b>; "
        f"{summary['positions']} positions, gross {_pct(summary['gross_exposure'])}, "
        f"one-way turnover {_pct(summary['turnover'])}</p>"
        + _table(["symbol", "target weight"], weights, "top-weights")
    )


def _risk(data: dict) -> str:
    risk = data["risk"] or {}
    report = risk.get("risk_report") or {}
    if not report:
        return '<p id="risk" class="muted">no risk report</p>'
    verdict = "approved" if report.get("approved") else "blocked"
    rows = [
        ["VaR", _pct(report.get("var"))],
        ["CVaR", _pct(report.get("cvar"))],
        ["max weight", _pct(report.get("max_weight"))],
        ["gross exposure", _pct(report.get("gross_exposure"))],
        ["daily loss", _pct(report.get("daily_loss"))],
        ["drawdown", _pct(report.get("drawdown"))],
        ["action", f"{report.get('action', 'none')} (scale {float(report.get('scale', 1)):.2f})"],
        ["breaches", ", ".join(report.get("breaches") or []) or "none"],
    ]
    stress = [[s["scenario"], s["kind"], _pct(s["loss"])] for s in risk.get("stress", [])]
    return (
        f'<p id="risk">gate: <b>{verdict}</b></p>'
        + _table(["measure", "value"], rows, "risk-report")
        + "<h3>Stress</h3>"
        + _table(["scenario", "kind", "loss"], stress, "stress")
    )


def _kill_switch(data: dict) -> str:
    ks = data["kill_switch"]
    if ks["enabled"]:
        return (
            f'<p id="kill-switch"><span class="on">ON</span> since {escape(str(ks["since"]))}: '
            f"{escape(ks['reason'] or 'no reason given')} (<code>mltrade kill-switch off</code> "
            "releases it)</p>"
        )
    return '<p id="kill-switch"><span class="off">off</span>: orders may be sent</p>'


def _links(data: dict) -> str:
    items = [
        f'<a id="link-{name}" href="{escape(url)}" target="_blank" rel="noopener">{label}</a>'
        if url
        else f'<span id="link-{name}" class="muted">{label}: set {setting}</span>'
        for name, label, url, setting in (
            ("mlflow", "MLflow", data["links"]["mlflow"], "MLFLOW_UI_URL"),
            ("grafana", "Grafana", data["links"]["grafana"], "GRAFANA_URL"),
        )
    ]
    return '<p id="links">' + " · ".join(items) + "</p>"


def render(data: dict) -> str:
    """The cockpit page for a ``jobs.cockpit()`` snapshot."""
    portfolio = data["portfolio"] or {}
    pnl = [
        [k, float(portfolio[k])]
        for k in ("cash", "positions_value", "equity", "pnl")
        if portfolio.get(k) is not None
    ]
    orders = [[o["symbol"], o["side"], o["qty"], o["status"]] for o in data["orders"]]
    positions = [[p["symbol"], p["qty"], p["avg_price"]] for p in data["positions"]]
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>mltrade cockpit</title>
<style>{STYLE}</style></head><body>
<h1>mltrade cockpit <span class="muted">({escape(data["trading_mode"])} trading,
broker {escape(data["broker"])})</span></h1>
<h2>Kill switch</h2>{_kill_switch(data)}
<h2>Today's plan</h2>{_plan(data)}
<h2>Risk report</h2>{_risk(data)}
<h2>Orders</h2>{_table(["symbol", "side", "qty", "status"], orders, "orders")}
<h2>Positions and P&amp;L <span class="muted">(as of {escape(str(portfolio.get("as_of")))},
USD)</span></h2>{_table(["", "USD"], pnl, "pnl")}
{_table(["symbol", "qty", "avg price"], positions, "positions")}
<h2>Links</h2>{_links(data)}
</body></html>"""


def snapshot_data() -> dict:
    from pipelines import jobs

    return jobs.cockpit()


@app.get("/", response_class=HTMLResponse)
def page() -> str:
    return render(snapshot_data())


@app.get("/snapshot")
def snapshot() -> dict:
    return snapshot_data()
