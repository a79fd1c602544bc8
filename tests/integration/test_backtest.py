"""The backtest end to end on the real sample bars: warehouse in, tearsheet, tables, MLflow."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pipelines import jobs
from pipelines.backtest.data import BacktestInputError
from pipelines.sources.sample import FIRST_SESSION, LAST_SESSION, SampleSource

OPTIONS = {"n_windows": 4, "mc_paths": 100, "rebalance_every": 5}
TABLES = ("backtest_runs", "backtest_equity", "backtest_weights", "backtest_trades")


@pytest.fixture
def sample(load_sample_bars, settings):
    load_sample_bars(SampleSource().universe()[:40])
    return settings


def _counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}


@pytest.mark.slow
def test_a_backtest_writes_a_tearsheet_rows_and_one_mlflow_run(warehouse, sample) -> None:
    from mlflow import MlflowClient

    result = jobs.backtest("momentum", FIRST_SESSION, LAST_SESSION, "test-run", OPTIONS)
    report = sample.home / "reports"
    page = result["report"]
    assert page.startswith(str(report)) and page.endswith("index.html")
    html = Path(page).read_text(encoding="utf-8")
    assert "Seed-plan targets vs measured" in html and "monte_carlo.png" in html
    counts = _counts(warehouse)
    assert counts["backtest_runs"] == 1 and counts["backtest_equity"] > 50
    assert counts["backtest_trades"] > 0 and counts["backtest_weights"] > 0
    with warehouse.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT metrics->>'sharpe', oos_start FROM backtest_runs")
        ).one()
    assert float(stored[0]) == pytest.approx(result["metrics"]["sharpe"])
    # Rerunning is idempotent: the same key, the same rows, no second MLflow run.
    again = jobs.backtest("momentum", FIRST_SESSION, LAST_SESSION, "test-run-2", OPTIONS)
    assert again["run_key"] == result["run_key"] and _counts(warehouse) == counts
    assert again["mlflow_run_id"] == result["mlflow_run_id"]
    run = MlflowClient(sample.mlflow_uri).get_run(result["mlflow_run_id"])
    assert run.data.metrics["sharpe"] == pytest.approx(result["metrics"]["sharpe"])
    artifacts = {a.path for a in MlflowClient(sample.mlflow_uri).list_artifacts(run.info.run_id)}
    assert {"index.html", "equity.png", "monte_carlo.png"} <= artifacts
    # Self-contained (MLflow's preview breaks relative links); the run spans the real work.
    assert "<img src=\"data:image/png;base64," in html and 'src="equity.png"' not in html
    assert run.info.end_time - run.info.start_time >= sum(result["timings"].values()) * 1000
    # A second configuration over the same period is a second trial: the DSR deflates.
    other = jobs.backtest("mean_reversion", FIRST_SESSION, LAST_SESSION, "test-run-3", OPTIONS)
    assert other["metrics"]["n_trials"] == 2.0
    # The return attribution's parts add up to the realized annualized mean.
    m = result["metrics"]
    parts = [v for k, v in m.items() if k.startswith("attribution_") and k != "attribution_total"]
    assert len(parts) == 5 and sum(parts) == pytest.approx(m["attribution_total"])


def test_bad_input_fails_before_any_work(warehouse, sample) -> None:
    with pytest.raises(BacktestInputError, match="outside the data"):
        jobs.backtest("momentum", date(2005, 1, 3), LAST_SESSION, "bad", OPTIONS)
    with pytest.raises(BacktestInputError, match="unknown strategy"):
        jobs.backtest("nope", FIRST_SESSION, LAST_SESSION, "bad", OPTIONS)
    with pytest.raises(BacktestInputError, match="fewer windows"):
        jobs.backtest("momentum", FIRST_SESSION, LAST_SESSION, "bad", {"n_windows": 12})
    assert _counts(warehouse)["backtest_runs"] == 0


def test_the_cli_reports_a_bad_strategy_plainly(warehouse, sample) -> None:
    from pipelines.cli import app

    result = CliRunner().invoke(
        app, ["backtest", "--strategy", "nope", "--start", "2009-08-21", "--end", "2010-08-20"]
    )
    assert result.exit_code != 0
    assert "unknown strategy 'nope'" in str(result.exception)


@pytest.mark.slow
def test_the_dag_parses_and_follows_the_policy(monkeypatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("WAREHOUSE_URL", "postgresql://nobody@127.0.0.1:1/none")
    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags" / "backtest.py"))
    assert bag.import_errors == {}
    dag = bag.dags["backtest"]
    assert dag.tags and dag.max_active_runs == 1
    assert type(dag.timetable).__name__ == "NullTimetable"  # on demand, never scheduled
    assert all(t.execution_timeout is not None and t.retries >= 1 for t in dag.tasks)
    assert set(dag.params) >= {"strategy", "start", "end", "n_windows", "oos_ratio"}
