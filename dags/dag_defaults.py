"""What the mltrade DAGs share: assets, default task arguments, and date resolution.

Cheap to import: no database, connection or network access at parse time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta

from airflow.sdk import Asset, Param
from airflow.sdk.exceptions import AirflowSkipException

# Third-party loggers whose INFO lines bury the pipeline's story in a task log: Great
# Expectations logs "Skipping registering function … because it is a closure" ~200 times per
# ingest. Set when a DAG file is parsed, which in a task's process is before the task imports
# them (Airflow's [logging] namespace_levels does not reach these stdlib loggers).
QUIET_LOGGERS = ("great_expectations", "alembic", "mlflow", "urllib3", "git", "httpx")


def quiet_third_party_logs() -> None:
    """Raise :data:`QUIET_LOGGERS` to WARNING (their warnings and errors still show)."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


quiet_third_party_logs()

# Assets name warehouse tables and the model registry; a producer's success triggers consumers.
BARS = Asset(name="bars", uri="postgres://warehouse:5432/mltrade/public/bars")
FEATURES = Asset(name="features", uri="postgres://warehouse:5432/mltrade/public/features")
MODEL = Asset(name="model", uri="mlflow://registry/mltrade-returns")
ORDERS = Asset(name="orders", uri="postgres://warehouse:5432/mltrade/public/orders")
# News items, their scores and the sentiment feature set (dags/news.py).
NEWS = Asset(name="news", uri="postgres://warehouse:5432/mltrade/public/news_items")

EXCHANGE_TZ = "America/New_York"
START_DATE = datetime(2009, 8, 21)  # first session of the offline sample data

DEFAULT_ARGS = {
    "owner": "mltrade",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "execution_timeout": timedelta(minutes=30),
}

# Every mltrade DAG: runs from the sample's first session, no catch-up, one run at a time.
DAG_ARGS = {"start_date": START_DATE, "catchup": False, "max_active_runs": 1}


def date_param(description: str) -> Param:
    """An optional YYYY-MM-DD field of the trigger form."""
    return Param(None, type=["null", "string"], format="date", description=description)


def as_date(value: object) -> date | None:
    """A trigger-form value ('2010-08-20', '', None) as a date."""
    if value in (None, ""):
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def sessions_of_interval(params: dict, start: datetime, end: datetime) -> tuple[date, date] | None:
    """``[first, last]`` session to work on: the run's conf range (``start``/``end``), else the
    data interval's. Offline, an interval the sample data does not cover is skipped."""
    from pipelines import calendar

    first, last = as_date(params.get("start")), as_date(params.get("end"))
    if first and last:
        return first, last
    covered = calendar.sessions_closing_in(start, end)
    if covered:
        skip_outside_offline_data(covered[0])
    return (covered[0], covered[-1]) if covered else None


def skip_outside_offline_data(day: date) -> None:
    """The offline clock: with ``DATA_SOURCE=sample`` a run dated where the sample has no bars
    (e.g. the run the scheduler makes for today when a DAG is unpaused) is skipped, not failed
    and retried. Call inside tasks only (it reads the settings)."""
    from pipelines.config import get_settings
    from pipelines.sources.sample import FIRST_SESSION, LAST_SESSION

    if get_settings().data_source == "sample" and not FIRST_SESSION <= day <= LAST_SESSION:
        raise AirflowSkipException(
            f"offline: the sample data covers {FIRST_SESSION}..{LAST_SESSION} and this run is "
            f"for {day}; trigger the DAG with dates in that range (README: the Airflow UI)"
        )


@contextmanager
def configuration_errors_fail_fast() -> Iterator[None]:
    """A :class:`~pipelines.errors.ConfigurationError` inside fails the task at once (a retry
    cannot fix a setting), its message the last line of the task log."""
    from airflow.sdk.exceptions import AirflowFailException

    from pipelines.errors import ConfigurationError

    try:
        yield
    except ConfigurationError as exc:
        raise AirflowFailException(str(exc)) from None


# The Airflow connection holding Alpaca's market-data keys (docs/sources.md).
ALPACA_DATA_CONN = "alpaca_data"


def connection_fields(conn_id: str) -> dict | None:
    """An Airflow connection's fields, or None when it is not defined. Call inside tasks only:
    it reads the connection, never at parse time."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        return None
    return {
        "login": conn.login,
        "password": conn.password,
        "host": conn.host,
        "extra": conn.extra_dejson,
    }
