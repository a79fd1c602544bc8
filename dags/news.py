"""Collect, check, score news and social posts; rebuild the sentiment features.

Hourly on weekdays at half past the hour, New York time: each run handles the items
published in its data interval. The interval ending 07:30 is the run before the pre-market
rebalance (08:00): 07:30 is the sentiment cutoff (pipelines/features/sentiment.py), so that
run completes the session's sentiment features. The weekend is one interval (Friday 23:30 to
Monday 00:30). A run triggered with ``start``/``end`` (dates, or ISO datetimes with a zone)
handles that range in one go; a backfill of the hourly runs writes what that one run writes.

Credentials come from the Airflow connections ``alpaca_data`` (login = key id, password =
secret), ``newsapi`` (password = API key) and ``reddit`` (login = client id, password = client
secret), or the environment (docs/news.md). Emits the ``news`` asset.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task
from airflow.timetables.interval import CronDataIntervalTimetable
from dag_defaults import (
    ALPACA_DATA_CONN,
    DAG_ARGS,
    DEFAULT_ARGS,
    EXCHANGE_TZ,
    NEWS,
    connection_fields,
)

CONNECTIONS = {"alpaca": ALPACA_DATA_CONN, "newsapi": "newsapi", "reddit": "reddit"}


def _bound(description: str) -> Param:
    return Param(None, type=["null", "string"], description=description)


@dag(
    description="News and social posts: collect, quarantine, score, point-in-time sentiment",
    schedule=CronDataIntervalTimetable("30 * * * 1-5", timezone=EXCHANGE_TZ),
    **DAG_ARGS,
    default_args=DEFAULT_ARGS,
    tags=["mltrade", "news"],
    params={
        "start": _bound("first session (YYYY-MM-DD) or ISO datetime; empty = the interval"),
        "end": _bound("last session (YYYY-MM-DD) or ISO datetime; empty = the interval"),
    },
    doc_md=__doc__,
)
def news():
    @task(outlets=[NEWS])
    def collect(params=None, data_interval_start=None, data_interval_end=None, run_id=None):
        from pipelines import jobs

        if params.get("start") and params.get("end"):
            start, end = jobs.news_window(str(params["start"]), str(params["end"]))
        else:
            start, end = data_interval_start, data_interval_end
        connections = {name: connection_fields(conn) for name, conn in CONNECTIONS.items()}
        return jobs.collect_news(start, end, run_id, connections=connections)

    collect()


news()
