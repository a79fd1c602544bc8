"""NYSE sessions from pandas-market-calendars: no hand-written holiday lists.

A *session* is an exchange trading day, named by its date in New York (``session_date``).
Times returned are UTC; a bar's ``ts`` is its session's close (13:00 New York on early closes).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import date, datetime
from functools import lru_cache

import pandas as pd

EXCHANGE = "NYSE"
EXCHANGE_TZ = "America/New_York"


@lru_cache(maxsize=1)
def _calendar():
    import pandas_market_calendars as mcal

    return mcal.get_calendar(EXCHANGE)


@lru_cache(maxsize=64)
def _year(year: int) -> pd.DataFrame:
    """One calendar year's schedule: the unit computed (one call costs about as much for a
    year as for a day, so a run asking day by day pays once a year, not once a day)."""
    frame = _calendar().schedule(start_date=date(year, 1, 1), end_date=date(year, 12, 31))
    frame = frame.rename(columns={"market_open": "open", "market_close": "close"})
    frame.index = pd.Index([ts.date() for ts in frame.index], name="session_date")
    return frame[["open", "close"]]


@lru_cache(maxsize=256)
def schedule(start: date, end: date) -> pd.DataFrame:
    """Sessions in ``[start, end]``: index = session date, columns ``open``/``close`` in UTC."""
    start, end = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    if start > end:
        return _year(start.year).iloc[:0]
    years = [_year(y) for y in range(start.year, end.year + 1)]
    frame = pd.concat(years) if len(years) > 1 else years[0]
    days = list(frame.index)
    return frame.iloc[bisect_left(days, start) : bisect_right(days, end)]


def sessions(start: date, end: date) -> list[date]:
    """Session dates in ``[start, end]``, ascending."""
    return list(schedule(start, end).index)


def is_session(day: date) -> bool:
    return day in schedule(day, day).index


def session_close(day: date) -> pd.Timestamp:
    """The close of session ``day`` in UTC; raises ValueError when ``day`` is not a session."""
    frame = schedule(day, day)
    if frame.empty:
        raise ValueError(f"{day} is not an {EXCHANGE} session")
    return frame["close"].iloc[0]


def session_open(day: date) -> pd.Timestamp:
    """The open of session ``day`` in UTC; raises ValueError when ``day`` is not a session."""
    frame = schedule(day, day)
    if frame.empty:
        raise ValueError(f"{day} is not an {EXCHANGE} session")
    return frame["open"].iloc[0]


@lru_cache(maxsize=64)
def _around(year: int) -> tuple[date, ...]:
    """Sessions of ``year`` and its neighbours: one calendar query serves a backtest's year
    of previous/next-session look-ups (each a separate query cost about 0.1 s)."""
    return tuple(sessions(date(year - 1, 12, 1), date(year + 1, 1, 31)))


def previous_session(day: date) -> date:
    """The last session strictly before ``day``."""
    known = _around(day.year)
    return known[bisect_left(known, day) - 1]


def next_session(day: date) -> date:
    """The first session strictly after ``day``."""
    known = _around(day.year)
    return known[bisect_right(known, day)]


def exchange_date(moment: datetime) -> date:
    """The New York calendar date of an aware datetime."""
    return pd.Timestamp(moment).tz_convert(EXCHANGE_TZ).date()


def sessions_closing_in(start: datetime, end: datetime) -> list[date]:
    """Sessions whose close falls in ``[start, end)``: those an Airflow data interval covers."""
    frame = schedule(exchange_date(start), exchange_date(end))
    closes = frame["close"]
    mask = (closes >= pd.Timestamp(start)) & (closes < pd.Timestamp(end))
    return list(frame.index[mask])
