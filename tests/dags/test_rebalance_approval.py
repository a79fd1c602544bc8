"""The human in the loop of premarket_rebalance, on the real DAG with ``dag.test()``.

With ``REBALANCE_APPROVAL=always`` the run parks in ``approval`` (AWAITING_INPUT) showing the
plan's summary; a person answers through the code behind Airflow's HITL REST endpoint
(``PATCH …/hitlDetails``), called here from a thread while ``dag.test()`` waits. Approve sends
the plan's orders; Reject sends nothing. A paper plan the gate left unchanged does not wait.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from airflow.dag_processing.dagbag import DagBag

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
SYMBOLS = ["AAPL", "IBM", "MSFT", "XOM", "JNJ", "WMT", "KO", "PG", "GE", "T", "PFE", "MRK"]
TRAIN_AS_OF = date(2010, 8, 9)

pytestmark = pytest.mark.slow


class Reviewer(threading.Thread):
    """Answers the first pending approval of ``premarket_rebalance`` with ``option``, as the
    Airflow UI's "Required actions" page does, and keeps the summary it was shown.

    It answers once the task has sat in AWAITING_INPUT for :data:`SETTLED` seconds: a person
    cannot answer within milliseconds, and ``dag.test()`` writes the parked task instance once
    more just after parking it, which would overwrite an answer given in between (seen under
    load). If it cannot answer, it fails the run so ``dag.test()`` returns instead of waiting.
    """

    SETTLED = 2.0  # seconds the parked task instance has not been written to

    def __init__(self, option: str) -> None:
        super().__init__(daemon=True)
        self.option = option
        self.body: str | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._answer()
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc
            self._fail_the_run()

    def _answer(self) -> None:
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
        from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
        from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
        from airflow.models.hitl import HITLDetail
        from airflow.utils.session import create_session

        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with create_session() as session:
                ti = self._parked(session)
                if ti is not None:
                    self.body = session.scalars(
                        sa.select(HITLDetail.body).where(HITLDetail.ti_id == ti.id)).one()
                    update_hitl_detail(
                        dag_id=ti.dag_id, dag_run_id=ti.run_id, task_id="approval",
                        update_hitl_detail_payload=UpdateHITLDetailPayload(
                            chosen_options=[self.option]),
                        user=SimpleAuthManagerUser(username="reviewer", role="admin"),
                        session=session)
                    return
            time.sleep(0.5)
        raise TimeoutError("premarket_rebalance never asked for approval")

    def _parked(self, session):  # noqa: ANN001, ANN202
        """The approval task instance once it has settled in AWAITING_INPUT, else None."""
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils import timezone
        from airflow.utils.state import TaskInstanceState

        ti = session.scalars(sa.select(TaskInstance).where(
            TaskInstance.dag_id == "premarket_rebalance",
            TaskInstance.task_id == "approval",
            TaskInstance.state == TaskInstanceState.AWAITING_INPUT)).first()
        if ti is None or ti.updated_at is None:
            return None
        if (timezone.utcnow() - ti.updated_at).total_seconds() < self.SETTLED:
            return None
        return ti

    @staticmethod
    def _fail_the_run() -> None:
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from airflow.utils.state import DagRunState

        with create_session() as session:
            session.execute(sa.update(DagRun).where(
                DagRun.dag_id == "premarket_rebalance", DagRun.state == DagRunState.RUNNING
            ).values(state=DagRunState.FAILED))


def _orders(engine: sa.Engine, day: date) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM orders WHERE session_date = :d"),
                            {"d": day}).scalar_one()


def _rebalance(dag, day: date, option: str | None):
    reviewer = Reviewer(option) if option else None
    if reviewer:
        reviewer.start()
    run = dag.test(run_conf={"session_date": str(day)})
    if reviewer:
        reviewer.join(timeout=10)
        assert reviewer.error is None, reviewer.error
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    return run, states, reviewer


def test_a_plan_waits_for_approval_and_only_an_approved_plan_is_sent(
    warehouse, load_sample_bars, tmp_path, monkeypatch
) -> None:
    from airflow.utils.db import upgradedb

    from pipelines import jobs
    from pipelines.config import get_settings
    from pipelines.features.store import build_features

    monkeypatch.setenv("MLTRADE_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MAX_WEIGHT", "0.15")
    monkeypatch.setenv("MAX_ORDER_NOTIONAL", "200000")
    get_settings.cache_clear()
    load_sample_bars(SYMBOLS)
    build_features(warehouse)
    jobs.train_model(TRAIN_AS_OF, "test-train")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    upgradedb()
    dag = DagBag(dag_folder=str(DAGS_DIR)).dags["premarket_rebalance"]
    for task in dag.tasks:
        task.retries = 0

    # Paper trading, the gate left the plan alone: no one is asked.
    automatic, states, _ = _rebalance(dag, date(2010, 8, 10), None)
    assert automatic.state == "success", states
    assert states["approval"] == "skipped" and states["submit"] == "success"
    assert _orders(warehouse, date(2010, 8, 10)) > 0

    monkeypatch.setenv("REBALANCE_APPROVAL", "always")
    get_settings.cache_clear()

    approved, states, reviewer = _rebalance(dag, date(2010, 8, 11), "Approve")
    assert approved.state == "success", states
    assert states["approval"] == "success" and states["submit"] == "success"
    assert _orders(warehouse, date(2010, 8, 11)) > 0
    body = reviewer.body or ""
    for shown in ("turnover", "VaR", "| symbol | target weight |", "REBALANCE_APPROVAL=always"):
        assert shown in body, f"the approval form does not show {shown!r}:\n{body}"

    rejected, states, _ = _rebalance(dag, date(2010, 8, 12), "Reject")
    assert states["approval"] == "success", states
    assert states["submit"] == "skipped" and states["reconcile_after"] == "skipped"
    assert _orders(warehouse, date(2010, 8, 12)) == 0, "a rejected plan sends nothing"
    get_settings.cache_clear()
