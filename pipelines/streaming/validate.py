"""Minute bars through batch ingest's rules, row by row, fast enough for a stream.

THE one call site of bar validation in the streaming path: the processor calls
:func:`validate_minute_bars` and nothing else. It reuses the batch gate's pieces
(:func:`pipelines.validation.prepare.check_frame` for types, symbols, copies, stale runs and
close jumps; the rule names, order and reasons of :mod:`pipelines.validation.bars_suite`),
with one rule changed for minutes: ``ts_in_session`` (the minute ends inside its NYSE
session, open < ts <= close) instead of a daily bar's ``ts_at_session_close``. The GX
checkpoint itself is not run per micro-batch: it costs about a second a call here
(docs/streaming.md), more than the stream's whole latency budget.

When market data exposes its own minute-bar validation function, swap the body of
:func:`validate_minute_bars` for it; its contract (valid rows, rejected rows with
``expectation`` and ``reason``) is that of :class:`pipelines.validation.ValidationResult`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from pipelines import calendar
from pipelines.sources.base import BAR_COLUMNS
from pipelines.validation import Limits, ValidationResult
from pipelines.validation.bars_suite import MAX_PRICE, MAX_VOLUME, SYMBOL_REGEX, rules
from pipelines.validation.prepare import check_frame

SUITE = "minute_bars_stream_v1"
_PAIRS = (("high", "low"), ("high", "open"), ("high", "close"), ("open", "low"), ("close", "low"))


def _session_bounds(session_date: pd.Series) -> tuple[pd.Series, pd.Series]:
    days = session_date.dropna()
    opens = pd.Series(pd.NaT, index=session_date.index, dtype="datetime64[ns, UTC]")
    closes = opens.copy()
    if days.empty:
        return opens, closes
    frame = calendar.schedule(min(days), max(days))
    opens.loc[days.index] = pd.to_datetime(days.map(frame["open"]), utc=True)
    closes.loc[days.index] = pd.to_datetime(days.map(frame["close"]), utc=True)
    return opens, closes


def _failures(check: pd.DataFrame, limits: Limits) -> dict[str, pd.Series]:
    """Rule name -> rows failing it (boolean), in the suite's order."""
    opens, closes = _session_bounds(check["session_date"])
    ts = pd.to_datetime(check["ts"], utc=True)
    fail: dict[str, pd.Series] = {
        "types_ok": check["type_error"].notna(),
        "ts_in_utc": check["ts_zone"].ne("UTC"),
    }
    for column in ("symbol", "ts", "session_date", "open", "high", "low", "close", "volume"):
        fail[f"{column}_not_null"] = check[column].isna()
    fail["symbol_well_formed"] = ~check["symbol"].astype("string").str.match(SYMBOL_REGEX).fillna(
        False
    ).astype(bool)
    fail["ts_in_session"] = ~((ts > opens) & (ts <= closes)).fillna(False).astype(bool)
    for column in ("open", "high", "low", "close"):
        fail[f"{column}_positive"] = ~((check[column] > 0) & (check[column] <= MAX_PRICE))
    fail["volume_non_negative"] = ~((check["volume"] >= 0) & (check["volume"] <= MAX_VOLUME))
    for high, low in _PAIRS:
        fail[f"{high}_ge_{low}"] = ~(check[high] >= check[low])
    first = check["copy_index"].eq(0)
    fail["exact_copy"] = ~first
    fail["unique_symbol_ts"] = first & check[first].duplicated(
        ["symbol", "ts"], keep=False
    ).reindex(check.index, fill_value=False)
    fail["not_stale"] = check["stale_repeat"].gt(0)
    jump = check["close_jump"].abs()
    fail["no_unexplained_jump"] = jump.gt(limits.max_close_jump) & jump.notna()
    return fail


def _ts_reason(row: Mapping[str, Any]) -> str:
    return (
        f"ts {row['ts']} is not inside the NYSE session of {row['_session_date']} "
        "(a minute bar ends after the open and at the close at the latest)"
    )


def validate_minute_bars(
    frame: pd.DataFrame, history: pd.DataFrame | None = None, limits: Limits | None = None
) -> ValidationResult:
    """Split canonical minute bars (``symbol, ts`` = minute end UTC, ``session_date``, OHLCV)
    into rows to load and rows to quarantine (with ``expectation`` and ``reason``).

    ``history``: the last loaded bar(s) of the symbols, so the first bar of a batch has a
    previous close for the jump rule.
    """
    limits = limits or Limits.from_settings()
    frame = frame.reset_index(drop=True)
    check = check_frame(frame[list(BAR_COLUMNS)], None, limits, history)
    expectation = pd.Series(None, index=frame.index, dtype="object")
    for name, failed in _failures(check, limits).items():
        expectation = expectation.where(expectation.notna() | ~failed.to_numpy(), name)
    bad = expectation.notna().to_numpy()
    rejected = frame.loc[bad].copy()
    rejected["expectation"] = expectation[bad]
    reasons = {rule.name: rule.reason for rule in rules(limits)}
    reasons["ts_in_session"] = _ts_reason
    explain = rejected.join(
        check.loc[bad, ["type_error", "ts_zone", "close_jump", "session_date"]].add_prefix("_")
    )
    rejected["reason"] = [
        reasons[name](row)
        for name, row in zip(rejected["expectation"], explain.to_dict("records"), strict=True)
    ]
    valid = frame.loc[~bad].copy()
    for column in ("open", "high", "low", "close", "volume"):
        valid[column] = check.loc[~bad, column].astype(np.float64)
    valid["ts"] = pd.to_datetime(check.loc[~bad, "ts"], utc=True)
    summary = {
        "suite": SUITE,
        "rows": len(frame),
        "valid": int((~bad).sum()),
        "rejected": int(bad.sum()),
    }
    return ValidationResult(valid.reset_index(drop=True), rejected, summary)
