"""Monthly (and on-demand) training: registers a @challenger; the first model becomes @champion.

Scheduled at 06:00 New York on the first of each month, on the month that just ended. Trigger
it by hand with an `as_of` date, or without one to train on the newest bars."""

from __future__ import annotations

from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable
from dag_defaults import (
    DAG_ARGS,
    DEFAULT_ARGS,
    EXCHANGE_TZ,
    FEATURES,
    MODEL,
    as_date,
    date_param,
    skip_outside_offline_data,
)


@dag(
    schedule=CronDataIntervalTimetable("0 6 1 * *", timezone=EXCHANGE_TZ),
    **DAG_ARGS,
    default_args={**DEFAULT_ARGS, "retries": 1},
    description="Monthly training on the features: registers a @challenger in MLflow",
    tags=["mltrade", "models"],
    params={
        "as_of": date_param(
            "train on data through this date; empty = the latest bars (manual run) or the "
            "month's end (scheduled run)"
        )
    },
    doc_md=__doc__,
)
def train():
    @task(inlets=[FEATURES], outlets=[MODEL])
    def fit(params=None, data_interval_end=None, run_id=None, dag_run=None) -> dict:
        from pipelines import calendar, jobs

        as_of = as_date(params.get("as_of"))
        if as_of is None:
            # A manual run's data interval is the last complete month, not "now": on demand
            # means the newest data the warehouse holds.
            manual = str(getattr(dag_run.run_type, "value", dag_run.run_type)) == "manual"
            if manual:
                as_of = jobs.latest_bar_date()
            else:
                as_of = calendar.exchange_date(data_interval_end)
                skip_outside_offline_data(as_of)
        return jobs.train_model(as_of, run_id)

    fit()


train()
