"""The metric series fed from stage summaries and job results (no server)."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from pipelines.monitoring import metrics


def _value(metric, *labels) -> float:
    return metric.labels(*labels)._value.get() if labels else metric._value.get()


def test_an_ingest_summary_feeds_rows_and_the_stage_series() -> None:
    before = (_value(metrics.ROWS_INGESTED, "unit-src"),
              _value(metrics.ROWS_QUARANTINED, "unit-src"))
    metrics.record_stage("ingest", "success", 1.5,
                         {"rows_fetched": 10, "rows_loaded": 7, "rows_rejected": 2},
                         {"source": "unit-src"})
    metrics.record_stage("ingest", "failed", 0.2, {}, {"source": "unit-src"})
    assert _value(metrics.ROWS_INGESTED, "unit-src") == before[0] + 7
    assert _value(metrics.ROWS_QUARANTINED, "unit-src") == before[1] + 2
    assert _value(metrics.STAGE_RUNS, "ingest", "failed") >= 1
    text = generate_latest(metrics.REGISTRY).decode()
    assert 'mltrade_stage_duration_seconds_bucket{le="2.0",stage="ingest"}' in text


def test_a_bad_summary_is_counted_and_never_raises() -> None:
    runs = _value(metrics.STAGE_RUNS, "features", "success")
    metrics.record_stage("features", "success", 0.1, {"rows": "many"}, {})
    metrics.record_stage("features", "success", 0.1, {"rows": object()}, {"x": object()})
    assert _value(metrics.STAGE_RUNS, "features", "success") == runs + 2
    metrics.record_job("risk_check", {"approved": True, "gross_exposure": "n/a"})
    metrics.record_job("risk_check", ["not", "a", "mapping"])


def test_risk_reports_set_exposure_var_and_reset_breakers() -> None:
    blocked = {"approved": False, "gross_exposure": 0.97, "var": 0.031, "var_limit": 0.02,
               "breakers": ["drawdown"], "strategy": "unit"}
    decisions = _value(metrics.RISK_DECISIONS, "blocked")
    metrics.record_job("risk_check", blocked)
    assert _value(metrics.RISK_DECISIONS, "blocked") == decisions + 1
    assert _value(metrics.GROSS_EXPOSURE, "unit") == pytest.approx(0.97)
    assert (_value(metrics.VAR_RATIO, "unit"), _value(metrics.VAR_LIMIT, "unit")) == (0.031, 0.02)
    assert _value(metrics.BREAKER_TRIPPED, "drawdown") == 1
    metrics.record_job("risk_check", {"approved": True, "strategy": "unit", "breakers": []})
    assert _value(metrics.BREAKER_TRIPPED, "drawdown") == 0


def test_portfolio_summary_sets_the_money_gauges() -> None:
    metrics.record_job("portfolio_summary", {"equity": 987187.18, "cash": 20027.97,
                                             "pnl": -12812.82, "positions": 26})
    gauges = metrics._PORTFOLIO_GAUGES
    assert gauges["mltrade_portfolio_pnl_usd"]._value.get() == -12812.82
    assert gauges["mltrade_portfolio_positions"]._value.get() == 26


def test_push_to_nothing_is_off_and_to_a_closed_port_is_only_a_warning(caplog) -> None:
    assert metrics.push("") is False
    assert metrics.push("http://127.0.0.1:9") is False
    assert "could not push metrics" in caplog.text


def test_metric_names_cover_the_registry_and_the_warehouse_state() -> None:
    names = metrics.metric_names()
    assert {"mltrade_stage_runs_total", "mltrade_rows_ingested_total",
            "mltrade_stage_duration_seconds_bucket", "mltrade_kill_switch_engaged",
            "mltrade_fill_latency_seconds_bucket", "mltrade_orders"} <= names
    assert all(name.startswith("mltrade_") for name in names)
