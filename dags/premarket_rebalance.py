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

Human in the loop: after the risk gate, ``review`` decides whether the plan waits for a person
(the gate scaled it, trading is live, or ``REBALANCE_APPROVAL=always``). If so, ``approval``
shows the plan's summary (top weights, turnover, VaR, stress) under "Required actions" in the
Airflow UI: Approve sends the orders; Reject, or no answer within
``REBALANCE_APPROVAL_TIMEOUT_MINUTES``, skips ``submit`` and nothing is sent. A paper plan the
gate left unchanged goes straight to ``submit``.

Offline (``DATA_SOURCE=sample``) a scheduled run for a day the sample does not cover is skipped.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException
from airflow.timetables.interval import CronDataIntervalTimetable
from dag_defaults import (
    DAG_ARGS,
    DEFAULT_ARGS,
    EXCHANGE_TZ,
    FEATURES,
    MODEL,
    ORDERS,
    as_date,
    date_param,
    skip_outside_offline_data,
)

# Order submission is never retried blindly by Airflow: a rerun goes through the
# exactly-once path (ledger first, then ask the broker by client_order_id).
MONEY_ARGS = {**DEFAULT_ARGS, "retries": 1, "execution_timeout": timedelta(minutes=10)}
BROKER_POOL = "broker"


def approval_timeout() -> timedelta:
    """How long a plan waits for a person (``REBALANCE_APPROVAL_TIMEOUT_MINUTES``)."""
    from pipelines.config import get_settings

    return timedelta(minutes=get_settings().rebalance_approval_timeout_minutes)


@dag(
    schedule=CronDataIntervalTimetable("0 8 * * 1-5", timezone=EXCHANGE_TZ),
    **DAG_ARGS,
    default_args=MONEY_ARGS,
    description="Pre-market rebalance: predict, optimize, risk gate, approval if needed, submit",
    tags=["mltrade", "trading"],
    params={"session_date": date_param("session to trade; empty = the run's date")},
    doc_md=__doc__,
)
def premarket_rebalance():
    @task
    def session(params=None, data_interval_end=None) -> str:
        from pipelines import calendar

        day = as_date(params.get("session_date"))
        if day is None:
            day = calendar.exchange_date(data_interval_end)
            skip_outside_offline_data(day)
        if not calendar.is_session(day):
            raise AirflowSkipException(f"{day} is not an NYSE session")
        return day.isoformat()

    @task(pool=BROKER_POOL, pool_slots=1)
    def reconcile_before(run_id=None) -> dict:
        from pipelines import jobs

        return jobs.reconcile(run_id)

    @task(inlets=[MODEL, FEATURES])
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

    @task.branch(retries=0)
    def review(plan_key: dict, gate_report: dict, ti=None) -> str:
        from pipelines import jobs

        decision = jobs.approval(plan_key, gate_report)
        ti.xcom_push(key="summary", value=decision["summary"])
        return "approval" if decision["required"] else "submit"

    approval = ApprovalOperator(
        task_id="approval",
        subject="Approve the {{ ti.xcom_pull(task_ids='session') }} rebalance?",
        body="{{ ti.xcom_pull(task_ids='review', key='summary') }}",
        defaults="Reject",  # no answer in time: nothing is sent
        response_timeout=approval_timeout(),
        retries=0,
    )

    # Runs after an approval, or straight after a review that needs none; a rejected or
    # timed-out approval skips it.
    @task(
        outlets=[ORDERS],
        pool=BROKER_POOL,
        pool_slots=1,
        trigger_rule="none_failed_min_one_success",
    )
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
    gate_report = risk_gate(plan_key)
    route = review(plan_key, gate_report)
    sent = submit(plan_key)
    route >> [approval, sent]
    approval >> sent >> reconcile_after()


premarket_rebalance()
