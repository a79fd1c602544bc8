"""The check frame the GX suite runs on, and the checks that are plain project code.

From a source's canonical bar frame (see :mod:`pipelines.sources.base`) this module builds, row
for row (same index):

* the bar columns coerced to canonical dtypes: ``symbol`` text, ``ts`` UTC timestamps,
  ``session_date`` dates, OHLCV float64. A value of the wrong type (text for a price, a naive
  time) becomes missing here and is described in ``type_error`` / ``ts_zone`` instead;
* computed columns for rules GX cannot express row by row (project code computes them, GX
  checks them): ``type_error``, ``ts_zone``, ``session_close`` (the NYSE close of
  ``session_date``), ``copy_index`` (0 for the first of identical rows), ``stale_repeat``
  (position of a bar in a run of identical OHLCV bars at least ``stale_sessions`` long, else 0),
  ``close_jump`` (close / previous close - 1, empty where a split explains it).

Project code only (no GX): the schema check (missing columns refuse the whole batch with
:class:`BarSchemaError`) and :func:`missing_sessions` (a report, nothing to quarantine).
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd

from pipelines import calendar
from pipelines.errors import DataSourceError, ValidationGateError
from pipelines.sources.base import BAR_COLUMNS, PRICE_COLUMNS
from pipelines.validation import vendor
from pipelines.validation.bars_suite import Limits

NUMBER_COLUMNS = (*PRICE_COLUMNS, "volume")
OHLCV = NUMBER_COLUMNS
UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu"})
# A corporate action whose kind contains one of these explains any price jump on its ex-date;
# a dividend (kind contains "dividend", value = cash per share) explains it only when adding
# the dividend back brings the close within the limit; other kinds explain nothing.
STRUCTURAL_KINDS = ("split", "spin")


class BarSchemaError(ValidationGateError):
    """The batch is not a bar frame at all (a column is missing): nothing of it can be checked."""


def check_schema(frame: pd.DataFrame) -> None:
    """Refuse a frame that lacks a canonical column, naming what is missing."""
    missing = [c for c in BAR_COLUMNS if c not in frame.columns]
    if missing:
        got = ", ".join(map(str, frame.columns)) or "no columns at all"
        raise BarSchemaError(
            f"the bar batch lacks column(s) {', '.join(missing)} (it has: {got}); a source must "
            f"return {', '.join(BAR_COLUMNS)} (pipelines/sources/base.py). Nothing of this batch "
            "was checked or loaded: fix the source's parser and rerun."
        )


def _is_missing(value: object) -> bool:
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and np.isnan(value))
    )


def _numbers(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(float64 values, text naming a value of the wrong type or None) for one OHLCV column."""
    name = raw.name
    no_error = pd.Series(None, index=raw.index, dtype="object")
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        values = raw.to_numpy(dtype="float64", na_value=np.nan)
        return pd.Series(values, index=raw.index), no_error

    def error(v: object) -> str | None:
        if _is_missing(v):
            return None
        if isinstance(v, int | float | np.integer | np.floating) and not isinstance(
            v, bool | np.bool_
        ):
            return None
        return f"{name} {v!r} is {type(v).__name__}, not a number (as the vendor sent it)"

    errors = raw.map(error).astype("object")
    values = pd.to_numeric(raw.where(errors.isna(), np.nan).astype("object"), errors="coerce")
    return pd.Series(values.to_numpy(dtype="float64", na_value=np.nan), index=raw.index), errors


def _zone_name(tz: object) -> str:
    name = str(tz)
    return "UTC" if name in UTC_NAMES else f"in time zone {name}"


def _times(raw: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(UTC timestamps, zone ('UTC', 'naive', 'in time zone X' or None), type error or None)."""
    index = raw.index
    no_error = pd.Series(None, index=index, dtype="object")
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        zone = pd.Series(_zone_name(raw.dtype.tz), index=index, dtype="object")
        return raw.dt.tz_convert("UTC"), zone.where(raw.notna(), None), no_error
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        zone = pd.Series("naive", index=index, dtype="object").where(raw.notna(), None)
        return pd.Series(pd.NaT, index=index, dtype="datetime64[us, UTC]"), zone, no_error

    def one(v: object) -> tuple[object, str | None, str | None]:
        if _is_missing(v):
            return pd.NaT, None, None
        if isinstance(v, datetime | np.datetime64):
            ts = pd.Timestamp(v)
            if ts.tzinfo is None:
                return pd.NaT, "naive", None
            return ts.tz_convert("UTC"), _zone_name(ts.tz), None
        return pd.NaT, None, f"ts {v!r} is {type(v).__name__}, not a timestamp"

    triples = [one(v) for v in raw.tolist()]
    stamps = [t[0] for t in triples]
    zones = [t[1] for t in triples]
    errors = [t[2] for t in triples]
    utc = pd.Series(pd.to_datetime(stamps, utc=True), index=index).astype("datetime64[us, UTC]")
    return utc, pd.Series(zones, index=index, dtype="object"), pd.Series(errors, index=index)


def _session_dates(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(dates or None, type error or None): a naive midnight timestamp counts as its date."""

    def one(v: object) -> tuple[date | None, str | None]:
        if _is_missing(v):
            return None, None
        if isinstance(v, datetime):
            if v.tzinfo is None and v == datetime(v.year, v.month, v.day):
                return v.date(), None
            return None, f"session_date {v!r} is a time, not a date"
        if isinstance(v, date):
            return v, None
        return None, f"session_date {v!r} is {type(v).__name__}, not a date"

    # A batch has few distinct dates: decide once per distinct value, then spread by code.
    codes, uniques = pd.factorize(raw.astype("object"), use_na_sentinel=True)
    pairs = [one(v) for v in uniques] + [(None, None)]  # code -1 (missing) -> last
    dates = np.array([p[0] for p in pairs], dtype="object")[codes]
    errors = np.array([p[1] for p in pairs], dtype="object")[codes]
    return pd.Series(dates, index=raw.index), pd.Series(errors, index=raw.index)


def _symbols(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    if pd.api.types.is_string_dtype(raw.dtype) and raw.dtype != object:
        return raw.astype("object").where(raw.notna(), None), pd.Series(
            None, index=raw.index, dtype="object"
        )
    is_text = raw.map(lambda v: isinstance(v, str) or _is_missing(v))
    errors = raw.map(lambda v: f"symbol {v!r} is {type(v).__name__}, not text").where(
        ~is_text, None
    )
    values = raw.where(is_text & raw.notna(), None).astype("object")
    return values, errors.astype("object")


def _corporate_days(
    corporate_actions: pd.DataFrame | None,
) -> tuple[set[tuple[str, date]], dict[tuple[str, date], float]]:
    """(symbol, ex_date) of splits and spin-offs; and cash dividend per share by the same key."""
    if corporate_actions is None or corporate_actions.empty:
        return set(), {}
    missing = {"symbol", "ex_date", "kind"} - set(corporate_actions.columns)
    if missing:
        raise DataSourceError(
            f"corporate actions lack column(s) {', '.join(sorted(missing))}; expected "
            "(symbol, ex_date, kind, value)"
        )
    kinds = corporate_actions["kind"].astype(str).str.lower()
    keys = list(
        zip(
            corporate_actions["symbol"].astype(str),
            pd.to_datetime(corporate_actions["ex_date"]).dt.date,
            strict=True,
        )
    )
    structural = kinds.str.contains("|".join(STRUCTURAL_KINDS)).to_numpy()
    dividend = kinds.str.contains("dividend").to_numpy()
    values = pd.to_numeric(corporate_actions.get("value"), errors="coerce")
    cash: dict[tuple[str, date], float] = {}
    for key, is_dividend, value in zip(keys, dividend, values, strict=True):
        if is_dividend and np.isfinite(value):
            cash[key] = cash.get(key, 0.0) + float(value)
    return {k for k, hit in zip(keys, structural, strict=True) if hit}, cash


def _stale_and_jumps(
    check: pd.DataFrame,
    corporate_actions: pd.DataFrame | None,
    limits: Limits,
    history: pd.DataFrame | None = None,
) -> tuple[pd.Series, pd.Series]:
    """Computed ``stale_repeat`` (int) and ``close_jump`` (float, NaN = not checked).

    ``history``: bars already loaded just before the batch (canonical frame); they give the
    batch's first bars a previous close and let a stale run span the batch boundary.
    """
    stale = pd.Series(0, index=check.index, dtype="int64")
    jump = pd.Series(np.nan, index=check.index, dtype="float64")
    values = check[list(OHLCV)]
    plausible = (
        (check["key_check"] == 1)
        & (check["copy_index"] == 0)
        & check["ts"].notna()
        & check["symbol"].notna()
        & np.isfinite(values).all(axis=1)
        & (check["close"] > 0)
    )
    bars = check.loc[plausible, ["symbol", "ts", "session_date", *OHLCV]]
    if history is not None and not history.empty:
        known = pd.MultiIndex.from_frame(bars[["symbol", "ts"]])
        past = history[["symbol", "ts", "session_date", *OHLCV]].copy()
        past["ts"] = pd.to_datetime(past["ts"], utc=True).astype(bars["ts"].dtype)
        past = past.loc[~pd.MultiIndex.from_frame(past[["symbol", "ts"]]).isin(known)]
        past.index = pd.RangeIndex(-len(past), 0)  # negative labels: context, not batch rows
        bars = pd.concat([past, bars])
    bars = bars.sort_values(["symbol", "ts"], kind="stable")
    if bars.empty:
        return stale, jump
    symbol = bars["symbol"]
    same_symbol = symbol.eq(symbol.shift())
    # Stale: identical OHLCV as the previous bar of the symbol; runs of >= N bars count.
    same_bar = same_symbol & bars[list(OHLCV)].eq(bars[list(OHLCV)].shift()).all(axis=1)
    run = (~same_bar).cumsum()
    run_length = run.map(run.value_counts())
    position = same_bar.groupby(run).cumsum()
    ours = bars.index >= 0
    stale_all = position.where(run_length >= limits.stale_sessions, 0).astype("int64")
    stale.loc[bars.index[ours]] = stale_all[ours]
    # Jumps: close against the previous close; a split on the ex-date explains it, and the bar
    # right after a one-bar spike (back within the limit of the bar before the spike) is fine.
    close = bars["close"]
    change = (close / close.shift() - 1).where(same_symbol)
    structural, cash = _corporate_days(corporate_actions)
    explained = pd.Series(False, index=bars.index)
    if structural or cash:
        keys = pd.MultiIndex.from_arrays([symbol, bars["session_date"]])
        explained[:] = keys.isin(list(structural))
        paid = pd.Series([cash.get(k, np.nan) for k in keys], index=bars.index)
        after_dividend = ((close + paid) / close.shift() - 1).where(same_symbol)
        explained |= paid.notna() & (after_dividend.abs() <= limits.max_close_jump)
    is_jump = (change.abs() > limits.max_close_jump) & ~explained
    two_back = (close / close.shift(2) - 1).where(same_symbol & same_symbol.shift(fill_value=False))
    back_from_spike = (
        is_jump & is_jump.shift(fill_value=False) & (two_back.abs() <= limits.max_close_jump)
    )
    jump.loc[bars.index[ours]] = change.where(~explained & ~back_from_spike)[ours]
    return stale, jump


def check_frame(
    frame: pd.DataFrame,
    corporate_actions: pd.DataFrame | None = None,
    limits: Limits | None = None,
    history: pd.DataFrame | None = None,
    *,
    start: date | None = None,
    end: date | None = None,
    timeframe: str = vendor.DAILY,
) -> pd.DataFrame:
    """The frame the suite validates (same index as ``frame``); see the module docstring.

    ``start``/``end``: the requested window (rows outside it fail ``in_window``);
    ``timeframe``: ``1Day`` or ``1Min`` (which bar time a row must carry).
    """
    limits = limits or Limits()
    symbol, symbol_error = _symbols(frame["symbol"])
    ts, ts_zone, ts_error = _times(frame["ts"])
    session_date, date_error = _session_dates(frame["session_date"])
    check = pd.DataFrame({"symbol": symbol, "ts": ts, "session_date": session_date})
    type_error = symbol_error.combine_first(ts_error).combine_first(date_error)
    for column in (*NUMBER_COLUMNS, *EXTRA_NUMBERS):
        raw = frame[column] if column in frame else pd.Series(np.nan, index=frame.index)
        check[column], error = _numbers(raw.rename(column))
        type_error = type_error.combine_first(error)
    check["type_error"] = type_error.astype("object").where(type_error.notna(), None)
    check["ts_zone"] = ts_zone
    _vendor_checks(check, frame, start, end, timeframe)
    closes = _session_closes(session_date)
    check["session_close"] = closes if timeframe == vendor.DAILY else ts
    check["key_check"] = _key_check(check)
    check["copy_index"] = _copy_index(check)
    check["stale_repeat"], check["close_jump"] = _stale_and_jumps(
        check, corporate_actions, limits, history
    )
    return check


EXTRA_NUMBERS = ("vwap", "trade_count")
TEXT_CHECKS = (
    "vendor_time_error",
    "session_error",
    "window_error",
    "bar_time_error",
    "vwap_error",
    "trade_count_error",
    "zero_volume_error",
)


def _vendor_checks(
    check: pd.DataFrame, frame: pd.DataFrame, start: date | None, end: date | None, timeframe: str
) -> None:
    """Add the text columns of :mod:`pipelines.validation.vendor`'s checks to ``check``."""
    if timeframe not in vendor.TIMEFRAMES:
        raise ValidationGateError(f"timeframe {timeframe!r}: use one of {vendor.TIMEFRAMES}")
    if "vendor_ts" in frame:
        started, check["vendor_time_error"] = vendor.vendor_times(frame["vendor_ts"])
        raw_ts = frame["vendor_ts"]
    else:  # a frame without the vendor's time: judge the canonical ts
        started = check["ts"] - pd.Timedelta(minutes=1) if timeframe == vendor.MINUTE else None
        check["vendor_time_error"] = None
        raw_ts = None
    check["session_error"] = vendor.session_errors(check["session_date"])
    clock = frame.get("vendor_clock")
    check["window_error"] = vendor.window_errors(
        check["session_date"], check["ts"], start, end, clock
    )
    check["bar_time_error"] = (
        vendor.bar_time_errors(started, check["session_date"], timeframe, raw_ts)
        if started is not None
        else None
    )
    check["vwap_error"] = vendor.vwap_errors(check["vwap"], check["low"], check["high"])
    check["trade_count_error"] = vendor.trade_count_errors(check["trade_count"])
    check["zero_volume_error"] = vendor.zero_volume_errors(check)


def _key_check(check: pd.DataFrame) -> pd.Series:
    """1 where a row's key (symbol, ts) can be trusted, so it takes part in the duplicate,
    stale and jump rules; 0 where an earlier rule already refuses the row (a bar moved to a
    neighbouring day by a wrong offset must not make the true bar of that day a "duplicate")."""
    clean = check["type_error"].isna() & check["ts_zone"].eq("UTC")
    for column in TEXT_CHECKS[:4]:
        clean &= check[column].isna()
    clean &= check["symbol"].notna() & check["ts"].notna()
    clean &= check["ts"].eq(check["session_close"])
    return clean.astype("int64")


def _copy_index(check: pd.DataFrame) -> pd.Series:
    """0 for a row, 1, 2, ... for later rows identical to it in every bar column."""
    copy_index = pd.Series(0, index=check.index, dtype="int64")
    trusted = check["key_check"] == 1
    same_key = check.duplicated(["symbol", "ts"], keep=False) & trusted  # usually none
    if same_key.any():
        keys = check.loc[same_key, list(BAR_COLUMNS)].astype("object")
        keys = keys.where(keys.notna(), None)
        copy_index[same_key] = keys.groupby(list(BAR_COLUMNS), dropna=False, sort=False).cumcount()
    return copy_index


def _session_closes(session_date: pd.Series) -> pd.Series:
    """The NYSE close (UTC) of each session date; missing where the date is no session."""
    days = session_date.dropna()
    out = pd.Series(pd.NaT, index=session_date.index, dtype="datetime64[us, UTC]")
    if days.empty:
        return out
    closes = calendar.schedule(min(days), max(days))["close"]
    out.loc[days.index] = pd.to_datetime(days.map(closes), utc=True)
    return out


def missing_sessions(
    frame: pd.DataFrame,
    start: date | None = None,
    end: date | None = None,
    examples: int = 5,
    symbols: list[str] | None = None,
) -> dict:
    """Per symbol, NYSE sessions in ``[start, end]`` with no bar in ``frame`` (a report).

    ``start``/``end`` default to the batch's first and last session dates. ``symbols``: the
    symbols that were *asked for*; one without any row has every session missing (without it,
    only symbols present in ``frame`` are judged). Returns ``{"total": n, "by_symbol": {symbol:
    {"count": k, "first": [ISO dates]}}}``, only symbols with gaps listed. Quarantined bars
    count as received: they are in ``quarantine``.
    """
    days = frame["session_date"].map(lambda v: v if isinstance(v, date) else None)
    received = frame.assign(session_date=days).dropna(subset=["symbol", "session_date"])
    if received.empty and (not symbols or start is None or end is None):
        return {"total": 0, "by_symbol": {}}
    first = start or min(received["session_date"])
    last = end or max(received["session_date"])
    expected = calendar.sessions(first, last)
    have_by_symbol: dict[str, set] = {
        str(symbol): set(got) for symbol, got in received.groupby("symbol")["session_date"]
    }
    judged = sorted(set(have_by_symbol) | set(symbols or []))
    by_symbol: dict[str, dict] = {}
    for symbol in judged:
        have = have_by_symbol.get(symbol, set())
        gaps = [d for d in expected if d not in have]
        if gaps:
            by_symbol[symbol] = {
                "count": len(gaps),
                "first": [d.isoformat() for d in gaps[:examples]],
            }
    return {"total": sum(v["count"] for v in by_symbol.values()), "by_symbol": by_symbol}
