"""Every DAG parses without touching a database and follows the project's scheduling policy."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
SCHEDULED = {
    "market_data", "market_data_intraday", "features", "train", "promote",
    "premarket_rebalance", "news",
}  # fmt: skip
ON_DEMAND = {"backtest"}  # triggered from the UI's form, never due
EXPECTED = SCHEDULED | ON_DEMAND


@pytest.fixture(scope="module")
def dagbag(monkeypatch_module) -> DagBag:
    # An unreachable warehouse proves that parsing opens no connection.
    monkeypatch_module.setenv("WAREHOUSE_URL", "postgresql://nobody@127.0.0.1:1/none")
    return DagBag(dag_folder=str(DAGS_DIR))


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_every_dag_imports(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) >= EXPECTED


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_policy(dagbag: DagBag, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    assert dag.tags, "every DAG is tagged"
    assert dag.max_active_runs == 1
    # Bare cron strings give zero-width data intervals in Airflow 3.
    allowed = (
        {"NullTimetable"}
        if dag_id in ON_DEMAND
        else {"CronDataIntervalTimetable", "AssetTriggeredTimetable"}
    )
    assert type(dag.timetable).__name__ in allowed
    for task in dag.tasks:
        assert task.execution_timeout is not None, f"{dag_id}.{task.task_id} has no timeout"
        assert task.retries is not None
    assert any(t.retries >= 1 for t in dag.tasks)


def test_money_path_order(dagbag: DagBag) -> None:
    dag = dagbag.dags["premarket_rebalance"]
    submit = dag.get_task("submit")
    upstream = submit.get_flat_relative_ids(upstream=True)
    assert {"risk_gate", "optimize", "predict", "reconcile_before", "session"} <= upstream
    assert dag.get_task("risk_gate").retries == 0, "a blocked plan is not retried"
