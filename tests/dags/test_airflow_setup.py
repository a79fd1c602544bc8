"""What ``make airflow``, the demo and the tests share: the environment, the offline clock, the
DAGs' forms and descriptions, quiet third-party logs, and when a plan waits for a person."""

from __future__ import annotations

import logging
import sys
from datetime import date
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import AirflowSkipException

from pipelines.approval import approval_reason
from scripts.airflow_env import airflow_env, parallelism, psycopg2_url

ROOT = Path(__file__).resolve().parents[2]
DAGS_DIR = ROOT / "dags"


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    with pytest.MonkeyPatch.context() as mp:  # parsing must not need the warehouse
        mp.setenv("WAREHOUSE_URL", "postgresql://nobody@127.0.0.1:1/none")
        return DagBag(dag_folder=str(DAGS_DIR))


def test_the_airflow_environment_is_secure_sized_and_on_psycopg2() -> None:
    env = airflow_env({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg://u:p@h/airflow"})
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg2://u:p@h/airflow"
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS" not in env
    assert 2 <= int(env["AIRFLOW__CORE__PARALLELISM"]) == parallelism() < 32
    # A variable the user set wins.
    assert "AIRFLOW__API__HOST" not in airflow_env(
        {"AIRFLOW__API__HOST": "0.0.0.0", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite://"})
    assert psycopg2_url("postgresql://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert psycopg2_url("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"
    makefile = (ROOT / "Makefile").read_text()
    assert "ALL_ADMINS" not in makefile


def test_every_dag_has_a_description(dagbag: DagBag) -> None:
    missing = [d for d, dag in dagbag.dags.items() if not (dag.description or "").strip()]
    assert not missing


def test_the_backtest_form_requires_its_dates_and_defaults_to_what_the_sample_supports(
    dagbag: DagBag,
) -> None:
    params = dagbag.dags["backtest"].params
    schema = params.get_param("start").schema
    assert params.get_param("start").has_value is False and schema["type"] == "string"
    assert params.get_param("end").has_value is False
    assert params["n_windows"] == 4


def test_market_data_leaves_dates_to_the_backfill_dialog(dagbag: DagBag) -> None:
    assert not {"start", "end"} & set(dagbag.dags["market_data"].params)


def test_assets_connect_the_pipeline(dagbag: DagBag) -> None:
    inlets = {(d, t.task_id): {a.name for a in t.inlets} for d, dag in dagbag.dags.items()
              for t in dag.tasks}
    assert "features" in inlets[("train", "fit")]
    assert {"model", "features"} <= inlets[("premarket_rebalance", "predict")]


@pytest.mark.parametrize(("day", "skipped"), [(date(2026, 12, 3), True), (date(2010, 8, 20), False),
                                              (date(2009, 8, 20), True)])
def test_the_offline_clock_skips_what_the_sample_cannot_serve(monkeypatch, day, skipped) -> None:
    sys.path.insert(0, str(DAGS_DIR))
    from dag_defaults import skip_outside_offline_data

    from pipelines.config import get_settings

    monkeypatch.setenv("DATA_SOURCE", "sample")
    get_settings.cache_clear()
    try:
        if skipped:
            with pytest.raises(AirflowSkipException, match="sample data covers 2009-08-21"):
                skip_outside_offline_data(day)
        else:
            skip_outside_offline_data(day)
        monkeypatch.setenv("DATA_SOURCE", "yahoo")
        get_settings.cache_clear()
        skip_outside_offline_data(day)  # online, every day is a real day
    finally:
        get_settings.cache_clear()


def test_a_plan_waits_for_a_person_when_scaled_live_or_always() -> None:
    clean, scaled = {"action": "none"}, {"action": "scaled", "scale": 0.8, "scaled_for": ["var"]}
    assert approval_reason(clean, "paper", "when_needed") is None
    assert "80%" in approval_reason(scaled, "paper", "when_needed")
    assert "live" in approval_reason(clean, "live", "when_needed")
    assert "always" in approval_reason(clean, "paper", "always")


def test_great_expectations_noise_stays_out_of_task_logs(caplog) -> None:
    """Parsing a DAG file (what a task's process does before the task imports GX) raises GX's
    loggers to WARNING: its closure lines are dropped, the pipeline's INFO lines are kept. (The
    browser tier's standalone checks a real ingest task log.)"""
    sys.path.insert(0, str(DAGS_DIR))
    import dag_defaults

    dag_defaults.quiet_third_party_logs()
    gx = logging.getLogger("great_expectations._docs_decorators")
    with caplog.at_level(logging.INFO):
        gx.info("Skipping registering function f.<locals>.g because it is a closure")
        gx.warning("a GX warning still shows")
        logging.getLogger("pipelines.ingest").info("ingest rows_loaded=1")
    text = caplog.text
    assert "because it is a closure" not in text
    assert "a GX warning still shows" in text and "ingest rows_loaded=1" in text


def test_the_cockpit_page_shows_every_section_and_escapes_what_it_shows() -> None:
    sys.path.insert(0, str(ROOT / "plugins"))
    from mltrade_cockpit import render

    snapshot = {
        "plan": {"strategy": "s", "session_date": "2010-08-16", "plan_version": 2,
                 "status": "submitted"},
        "summary": {"top_weights": {"AAPL": 0.05}, "positions": 1, "gross_exposure": 0.98,
                    "turnover": 0.12},
        "risk": {"risk_report": {"approved": True, "var": 0.0195, "action": "none"},
                 "stress": [{"scenario": "pc1_down_3sd", "kind": "factor_shock",
                             "loss": 0.0172}]},
        "orders": [{"symbol": "AAPL", "side": "buy", "qty": 10.0, "status": "filled"}],
        "positions": [{"symbol": "AAPL", "qty": 10.0, "avg_price": 250.0}],
        "portfolio": {"as_of": "2010-08-20", "cash": 1.0, "positions_value": 2.0,
                      "equity": 3.0, "pnl": -4.0},
        "kill_switch": {"enabled": True, "reason": "<script>alert(1)</script>",
                        "since": "2010-08-20T12:00:00"},
        "links": {"mlflow": "http://127.0.0.1:5000", "grafana": ""},
        "trading_mode": "paper", "broker": "simulated",
    }
    html = render(snapshot)
    for section in ('id="plan"', 'id="top-weights"', 'id="risk-report"', 'id="stress"',
                    'id="orders"', 'id="pnl"', 'id="positions"', 'id="kill-switch"'):
        assert section in html, section
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert ">ON<" in html and "1.95%" in html and "pc1_down_3sd" in html and "filled" in html
    assert 'href="http://127.0.0.1:5000"' in html and "set GRAFANA_URL" in html
