"""Monthly (and on-demand) training: registers a @challenger; the first model becomes @champion."""

from __future__ import annotations

from airflow.sdk import Param, dag, task
from airflow.timetables.interval import CronDataIntervalTimetable
from dag_defaults import DEFAULT_ARGS, EXCHANGE_TZ, MODEL, START_DATE, as_date


@dag(
    schedule=CronDataIntervalTimetable("0 6 1 * *", timezone=EXCHANGE_TZ),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retries": 1},
    tags=["mltrade", "models"],
    params={
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            description="train on data through this date; empty = the run's date",
        )
    },
    doc_md=__doc__,
)
def train():
    @task(outlets=[MODEL])
    def fit(params=None, data_interval_end=None, run_id=None) -> dict:
        from pipelines import calendar, jobs

        as_of = as_date(params.get("as_of")) or calendar.exchange_date(data_interval_end)
        return jobs.train_model(as_of, run_id)

    fit()


train()
