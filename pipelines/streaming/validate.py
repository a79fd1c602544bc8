"""Minute bars through batch ingest's own rules, on the micro-batch frame, without a GX run.

THE one call site of bar validation in the streaming path: the processor calls
:func:`validate_minute_bars` and nothing else. It is the batch gate's minute-bar path
(:func:`pipelines.validation.validate_minute_bars`) minus the GX checkpoint: the same check
frame (:func:`pipelines.validation.prepare.check_frame` with ``timeframe=1Min``: types,
NYSE session, bar time inside regular hours, copies, jumps against the last loaded bar), the
same rules in the same order with the same reasons and limits (``MINUTE_LIMITS``: no stale
rule on minutes), judged by :mod:`pipelines.validation.frame_rules` in vectorized pandas. A
GX checkpoint costs 0.1 s to 1 s a call here (docs/streaming.md), more than the stream's
whole latency budget. Row-level quarantine is kept: each rejected row carries the first rule
it failed (``expectation``) and why (``reason``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from pipelines.sources.base import BAR_COLUMNS
from pipelines.validation import Limits, ValidationResult
from pipelines.validation.bars_suite import Rule, rules
from pipelines.validation.frame_rules import first_failed
from pipelines.validation.gate import MINUTE_LIMITS
from pipelines.validation.prepare import TEXT_CHECKS, check_frame
from pipelines.validation.vendor import MINUTE

SUITE = "minute_bars_stream_v2"
_EXPLAIN = ["type_error", "ts_zone", "close_jump", "session_date", *TEXT_CHECKS]


def validate_minute_bars(
    frame: pd.DataFrame, history: pd.DataFrame | None = None, limits: Limits | None = None
) -> ValidationResult:
    """Split canonical minute bars (``symbol, ts`` = minute end UTC, ``session_date``, OHLCV)
    into rows to load and rows to quarantine (with ``expectation`` and ``reason``).

    ``history``: the last loaded bar(s) of the symbols, so the first bar of a batch has a
    previous close for the jump rule.
    """
    limits = limits or MINUTE_LIMITS
    suite = _suite(limits)
    frame = frame.reset_index(drop=True)
    check = check_frame(frame[list(BAR_COLUMNS)], None, limits, history, timeframe=MINUTE)
    expectation = first_failed(check, suite)
    bad = expectation.notna().to_numpy()
    rejected = frame.loc[bad].copy()
    rejected["expectation"] = expectation[bad]
    if bad.any():
        by_name = {rule.name: rule for rule in suite}
        explain = rejected.join(check.loc[bad, _EXPLAIN].add_prefix("_"))
        rejected["reason"] = [
            by_name[name].reason(row)
            for name, row in zip(rejected["expectation"], explain.to_dict("records"), strict=True)
        ]
    else:
        rejected["reason"] = pd.Series(dtype="object")
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


@lru_cache(maxsize=8)
def _suite(limits: Limits) -> list[Rule]:
    """The suite's rules for ``limits``, built once (GX expectation objects: about 5 ms a
    build, paid by every micro-batch before); only read afterwards."""
    return rules(limits)
