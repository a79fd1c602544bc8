"""Monthly (and on-demand) training: registers a @challenger; the first model becomes @champion."""

from __future__ import annotations

from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable
from dag_defaults import DAG_ARGS, DEFAULT_ARGS, EXCHANGE_TZ, MODEL, as_date, date_param


@dag(
    schedule=CronDataIntervalTimetable("0 6 1 * *", timezone=EXCHANGE_TZ),
    **DAG_ARGS,
    default_args={**DEFAULT_ARGS, "retries": 1},
    tags=["mltrade", "models"],
    params={"as_of": date_param("train on data through this date; empty = the run's date")},
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
