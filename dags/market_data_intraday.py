"""Collect, validate and load one-minute bars after the NYSE close, one run per session.

Each run loads the minute bars of the sessions that closed in its data interval into
``minute_bars`` through the same gate as daily bars, then reconciles each session's minutes
with its daily bar (``MINUTE_RECONCILE_TOLERANCE``, recorded in ``validation_runs``). It runs
after ``market_data`` (16:30) so the daily bar it reconciles with is usually loaded.

Minute bars come from Alpaca only (``DATA_SOURCE=alpaca``, keys in the ``alpaca_data``
connection or the settings): the offline ``sample`` data is daily, so under it a run for one
of its sessions fails at once, without retries, saying so in one line.
"""

from __future__ import annotations

from airflow.sdk import Asset, dag, task
from airflow.sdk.exceptions import AirflowSkipException
from airflow.timetables.interval import CronDataIntervalTimetable
from dag_defaults import (
    ALPACA_DATA_CONN,
    DAG_ARGS,
    DEFAULT_ARGS,
    EXCHANGE_TZ,
    configuration_errors_fail_fast,
    connection_fields,
    date_param,
    sessions_of_interval,
)

MINUTE_BARS = Asset(name="minute_bars", uri="postgres://warehouse:5432/mltrade/public/minute_bars")


@dag(
    description="Minute bars after the close: collect, validate, load, check against the daily bar",
    schedule=CronDataIntervalTimetable("45 16 * * 1-5", timezone=EXCHANGE_TZ),
    **DAG_ARGS,
    default_args=DEFAULT_ARGS,
    tags=["mltrade", "market-data"],
    params={
        "start": date_param("first session (YYYY-MM-DD)"),
        "end": date_param("last session (YYYY-MM-DD)"),
    },
    doc_md=__doc__,
)
def market_data_intraday():
    @task(outlets=[MINUTE_BARS])
    def ingest_minutes(
        params=None, data_interval_start=None, data_interval_end=None, run_id=None
    ) -> dict:
        from pipelines import jobs

        span = sessions_of_interval(params, data_interval_start, data_interval_end)
        if span is None:
            raise AirflowSkipException("no NYSE session closed in this data interval")
        vendor = connection_fields(ALPACA_DATA_CONN)
        with configuration_errors_fail_fast():  # e.g. the sample source: nothing to retry
            return jobs.ingest_minute_bars(span[0], span[1], run_id, vendor_connection=vendor)

    ingest_minutes()


market_data_intraday()
