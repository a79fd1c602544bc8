"""Pre-market rebalance on NYSE sessions: predict, optimize, gate, submit, reconcile.

The run's session is the New York date of its data interval end (08:00 before the open) or
the ``session_date`` given in the trigger form. Holidays and weekends are skipped.

Every task that talks to the broker (reconcile before, submit, reconcile after) runs in the
Airflow pool ``broker`` of one slot, so two runs (or a backfill) never call the broker at the
same time. The scheduler does not run tasks of a pool that does not exist: create it once with
``airflow pools set broker 1 "one broker call at a time"`` (``make airflow`` does).
``dag.test()`` (the demo, the tests) runs tasks without pool accounting.

The pool is not what makes submission safe: ``optimize`` and ``submit`` call the money-path
guard (``pipelines.execution.guards.require_trading_allowed``: session, kill switch, fresh
bars, clean reconciliation) through their jobs, and ``optimize``, ``risk_gate`` and
``submit`` each hold the session's plan lock in PostgreSQL, so a CLI rebalance beside this
run makes one of the two fail with one line (``PlanConflict``) and never sends twice.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException
from airflow.timetables.interval import CronDataIntervalTimetable
from dag_defaults import DAG_ARGS, DEFAULT_ARGS, EXCHANGE_TZ, ORDERS, as_date, date_param

# Order submission is never retried blindly by Airflow: a rerun goes through the
# exactly-once path (ledger first, then ask the broker by client_order_id).
MONEY_ARGS = {**DEFAULT_ARGS, "retries": 1, "execution_timeout": timedelta(minutes=10)}
BROKER_POOL = "broker"


@dag(
    schedule=CronDataIntervalTimetable("0 8 * * 1-5", timezone=EXCHANGE_TZ),
    **DAG_ARGS,
    default_args=MONEY_ARGS,
    tags=["mltrade", "trading"],
    params={"session_date": date_param("session to trade; empty = the run's date")},
    doc_md=__doc__,
)
def premarket_rebalance():
    @task
    def session(params=None, data_interval_end=None) -> str:
        from pipelines import calendar

        day = as_date(params.get("session_date")) or calendar.exchange_date(data_interval_end)
        if not calendar.is_session(day):
            raise AirflowSkipException(f"{day} is not an NYSE session")
        return day.isoformat()

    @task(pool=BROKER_POOL, pool_slots=1)
    def reconcile_before(run_id=None) -> dict:
        from pipelines import jobs

        return jobs.reconcile(run_id)

    @task
    def predict(day: str, run_id=None) -> dict:
        from pipelines import jobs

        return jobs.predict(as_date(day), run_id)

    @task
    def optimize(day: str, prediction: dict, run_id=None) -> dict:
        from pipelines import jobs

        return jobs.plan(
            as_date(day), prediction["model_name"], prediction["model_version"], run_id
        )

    @task(retries=0)
    def risk_gate(plan_key: dict) -> dict:
        from pipelines import jobs

        return jobs.risk_check(plan_key)

    @task(outlets=[ORDERS], pool=BROKER_POOL, pool_slots=1)
    def submit(plan_key: dict, run_id=None) -> dict:
        from pipelines import jobs

        return jobs.submit(plan_key, run_id)

    @task(pool=BROKER_POOL, pool_slots=1)
    def reconcile_after(run_id=None) -> dict:
        from pipelines import jobs

        return jobs.reconcile(run_id)

    day = session()
    checked = reconcile_before()
    prediction = predict(day)
    day >> checked >> prediction
    plan_key = optimize(day, prediction)
    sent = submit(plan_key)
    risk_gate(plan_key) >> sent >> reconcile_after()


premarket_rebalance()
