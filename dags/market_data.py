"""Collect, validate and load daily bars after the NYSE close.

Scheduled runs load the sessions that closed in their data interval; a run triggered with
``{"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}`` as its configuration (the trigger dialog's
advanced options) loads that range in one go. The DAG declares no date params: the backfill
dialog's date range is the one way to pick dates there. Offline (``DATA_SOURCE=sample``) a run
dated outside the sample's range is skipped, so unpausing never makes a failing run. An
Airflow backfill (one run per interval) loads exactly the rows one run over the whole range
loads. After the load, the universe membership is re-derived from the bars, and retention drops
partitions wholly older than ``BARS_RETENTION_DAYS`` before the interval's last session (off by
default).
"""

from __future__ import annotations

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException
from airflow.timetables.interval import CronDataIntervalTimetable
from dag_defaults import (
    ALPACA_DATA_CONN,
    BARS,
    DAG_ARGS,
    DEFAULT_ARGS,
    EXCHANGE_TZ,
    connection_fields,
    sessions_of_interval,
)


@dag(
    schedule=CronDataIntervalTimetable("30 16 * * 1-5", timezone=EXCHANGE_TZ),
    **DAG_ARGS,
    default_args=DEFAULT_ARGS,
    description="Daily bars after the NYSE close: collect, validate (GX), load, prune",
    tags=["mltrade", "market-data"],
    doc_md=__doc__,
)
def market_data():
    @task(outlets=[BARS])
    def ingest(params=None, data_interval_start=None, data_interval_end=None, run_id=None) -> dict:
        from pipelines import jobs

        span = sessions_of_interval(params, data_interval_start, data_interval_end)
        if span is None:
            raise AirflowSkipException("no NYSE session closed in this data interval")
        vendor = connection_fields(ALPACA_DATA_CONN)  # Alpaca's keys, when the connection exists
        return jobs.ingest_bars(span[0], span[1], run_id, vendor_connection=vendor)

    @task
    def universe(run_id=None) -> dict:
        from pipelines import jobs

        return jobs.refresh_universe(run_id)

    @task
    def retention(params=None, data_interval_start=None, data_interval_end=None, run_id=None):
        from pipelines import jobs

        span = sessions_of_interval(params, data_interval_start, data_interval_end)
        if span is None:
            raise AirflowSkipException("no NYSE session closed in this data interval")
        return jobs.apply_retention(span[1], run_id)

    loaded = ingest()
    loaded >> [universe(), retention()]


market_data()
