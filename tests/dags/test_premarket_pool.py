"""The broker pool of premarket_rebalance: every task that calls the broker takes its one slot."""

from __future__ import annotations

from pathlib import Path

from airflow.dag_processing.dagbag import DagBag

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
BROKER_TASKS = {"reconcile_before", "submit", "reconcile_after"}


def test_broker_tasks_share_a_one_slot_pool(monkeypatch) -> None:
    monkeypatch.setenv("WAREHOUSE_URL", "postgresql://nobody@127.0.0.1:1/none")
    dag = DagBag(dag_folder=str(DAGS_DIR / "premarket_rebalance.py")).dags["premarket_rebalance"]
    pooled = {t.task_id for t in dag.tasks if t.pool == "broker"}
    assert pooled == BROKER_TASKS
    assert all(dag.get_task(t).pool_slots == 1 for t in BROKER_TASKS)
    assert dag.get_task("reconcile_after").get_flat_relative_ids(upstream=True) >= {"submit"}
