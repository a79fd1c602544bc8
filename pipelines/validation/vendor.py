"""Checks on what the vendor sent, before any coercion: times, window, VWAP, trade counts.

A source that keeps the vendor's raw values adds the optional *vendor columns* to its bar
frame (:data:`pipelines.sources.base.VENDOR_COLUMNS`):

- ``vendor_ts``: the bar's time exactly as sent (Alpaca's ``t``: RFC 3339 text with a UTC
  offset; yfinance's index entry as ISO text). A daily bar must be stamped at 00:00 New York of
  its session (both Alpaca and Yahoo do this), a minute bar at the whole minute it *starts*,
  inside the session's regular hours;
- ``vwap``, ``trade_count``: Alpaca's ``vw`` (USD) and ``n`` (trades), raw;
- ``vendor_clock``: the vendor's own clock when it answered (the HTTP ``Date`` header, UTC);
- ``raw``: the vendor's item for the bar (a dict), stored with a quarantined row.

Each function here returns, row for row, the reason text of a failure or None; the GX suite
checks that these columns are empty (:mod:`pipelines.validation.bars_suite`). Without the
vendor columns (the ``sample`` source, a hand-made frame) every check here passes.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from pipelines import calendar
from pipelines.sources.rawtime import vendor_times

__all__ = ["vendor_times"]  # re-exported: the gate's view of the vendor's time parsing

DAILY, MINUTE = "1Day", "1Min"
TIMEFRAMES = (DAILY, MINUTE)
VWAP_TOLERANCE = 1e-4  # USD: Alpaca rounds vw to 4 decimals, so it may sit that far outside


def _none(index: pd.Index) -> pd.Series:
    return pd.Series(None, index=index, dtype="object")


def _written_midnight(value: object) -> bool:
    """Whether the text's own wall clock (before its offset) reads 00:00."""
    return isinstance(value, str) and value[11:16] == "00:00"


def bar_time_errors(
    vendor: pd.Series, session_date: pd.Series, timeframe: str, raw: pd.Series | None
) -> pd.Series:
    """Reason where the vendor's (UTC) start time is not the session's bar time, else None.

    Daily: 00:00 New York on ``session_date``. Minute: a whole minute in ``[open, close)`` of
    ``session_date`` (the bar starts there). Rows without a usable time or session are left to
    the rules that report those.
    """
    errors = _none(vendor.index)
    usable = vendor.notna() & session_date.map(lambda d: isinstance(d, date)).astype(bool)
    if not usable.any():
        return errors
    days = session_date[usable]
    local = vendor[usable].dt.tz_convert(calendar.EXCHANGE_TZ)
    if timeframe == DAILY:
        bad = (local.dt.normalize() != local) | (local.dt.date != days)
    else:
        closes = _session_bounds(days)
        bad = (
            (vendor[usable].dt.floor("min") != vendor[usable])
            | ~(vendor[usable] >= closes["open"])
            | ~(vendor[usable] < closes["close"])
        )
    for i in bad.index[bad.to_numpy()]:
        errors.at[i] = _bar_time_reason(
            vendor.at[i], session_date.at[i], timeframe, None if raw is None else raw.at[i]
        )
    return errors


def _session_bounds(days: pd.Series) -> pd.DataFrame:
    frame = calendar.schedule(min(days), max(days))
    opens = pd.to_datetime(days.map(frame["open"]), utc=True)
    closes = pd.to_datetime(days.map(frame["close"]), utc=True)
    return pd.DataFrame({"open": opens, "close": closes}, index=days.index)


def _bar_time_reason(start: pd.Timestamp, day: date, timeframe: str, raw: object) -> str:
    local = start.tz_convert(calendar.EXCHANGE_TZ)
    sent = repr(raw) if raw is not None else str(start)
    if timeframe == DAILY:
        if _written_midnight(raw):
            midnight = pd.Timestamp(local.date(), tz=calendar.EXCHANGE_TZ)
            return (
                f"the vendor's bar time {sent} reads 00:00 with the wrong UTC offset: it is "
                f"{local:%Y-%m-%d %H:%M} New York, not midnight (New York was UTC"
                f"{midnight:%z} then); the bar's session is unknown, so it is not loaded"
            )
        return (
            f"the vendor's bar time {sent} is {local:%Y-%m-%d %H:%M} New York, not 00:00 of "
            "a session: a daily bar is stamped at its session's start (an intraday stamp?)"
        )
    if start.floor("min") != start:
        return f"the minute bar's start {sent} is not on a whole minute"
    return (
        f"the minute bar's start {sent} ({local:%H:%M} New York) is outside the regular "
        f"hours of session {day}"
    )


def session_errors(session_date: pd.Series) -> pd.Series:
    """ "not an NYSE session" where a (valid) session date is a weekend or a holiday."""
    errors = _none(session_date.index)
    days = session_date[session_date.map(lambda d: isinstance(d, date)).astype(bool)]
    if days.empty:
        return errors
    known = set(calendar.sessions(min(days), max(days)))
    for i, day in days.items():
        if day not in known:
            kind = "a weekend" if day.weekday() >= 5 else "an exchange holiday"
            errors.at[i] = f"session_date {day} is not an NYSE session ({kind})"
    return errors


def window_errors(
    session_date: pd.Series,
    ts: pd.Series,
    start: date | None,
    end: date | None,
    vendor_clock: pd.Series | None,
) -> pd.Series:
    """Reason where a bar lies outside the requested ``[start, end]`` or after the vendor's
    clock (a bar that had not ended when the vendor answered), else None."""
    errors = _none(session_date.index)
    is_day = session_date.map(lambda d: isinstance(d, date)).astype(bool)
    for i, day in session_date[is_day].items():
        if (start is not None and day < start) or (end is not None and day > end):
            errors.at[i] = (
                f"session {day} is outside the requested window [{start}, {end}]: the vendor "
                "sent a bar nobody asked for"
            )
    if vendor_clock is not None:
        clock = pd.to_datetime(vendor_clock, utc=True, errors="coerce")
        late = ts.notna() & clock.notna() & (ts > clock) & errors.isna()
        for i in late.index[late.to_numpy()]:
            errors.at[i] = (
                f"bar ends at {ts.at[i]}, after the vendor's own clock {clock.at[i]} (its "
                "Date header): a bar from the future or one still forming"
            )
    return errors


def vwap_errors(vwap: pd.Series, low: pd.Series, high: pd.Series) -> pd.Series:
    """Reason where a VWAP is outside ``[low, high]`` (± :data:`VWAP_TOLERANCE`), else None."""
    errors = _none(vwap.index)
    bad = vwap.notna() & ((vwap < low - VWAP_TOLERANCE) | (vwap > high + VWAP_TOLERANCE))
    for i in bad.index[bad.to_numpy()]:
        errors.at[i] = (
            f"vwap {vwap.at[i]} is outside the bar's range [low {low.at[i]}, high "
            f"{high.at[i]}]: an average trade price cannot be"
        )
    return errors


def trade_count_errors(count: pd.Series) -> pd.Series:
    """Reason where a trade count is negative, fractional or infinite, else None."""
    errors = _none(count.index)
    bad = count.notna() & ~((count >= 0) & np.isfinite(count) & (count == np.floor(count)))
    for i in bad.index[bad.to_numpy()]:
        errors.at[i] = f"trade count {count.at[i]} is not a whole number >= 0"
    return errors


def zero_volume_errors(frame: pd.DataFrame) -> pd.Series:
    """Reason where volume is 0 but the prices moved (a bar without trades cannot move)."""
    errors = _none(frame.index)
    moved = (frame["high"] > frame["low"]) | (frame["open"] != frame["close"])
    bad = (frame["volume"] == 0) & moved
    for i in bad.index[bad.to_numpy()]:
        row = frame.loc[i]
        errors.at[i] = (
            f"volume 0 but the price moved (open {row['open']}, high {row['high']}, low "
            f"{row['low']}, close {row['close']}): a bar without trades cannot move"
        )
    return errors
