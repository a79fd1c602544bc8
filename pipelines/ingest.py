"""Ingest: fetch bars from a source, pass them through the gate, load what passed.

Rejected rows go to ``quarantine`` with the failed expectation, a reason and the raw values;
the run's validation summary goes to ``validation_runs``. When the rejected fraction exceeds
the threshold, nothing of the batch is loaded and :class:`ValidationGateError` stops the run
(and everything downstream of it): no trading on bad data.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines.errors import ValidationGateError
from pipelines.runlog import stage_run
from pipelines.sources.base import BAR_COLUMNS, MarketDataSource
from pipelines.validation import ValidationResult, validate_bars
from pipelines.warehouse.bars import upsert_bars
from pipelines.warehouse.partitions import ensure_partitions


@dataclass(frozen=True)
class IngestSummary:
    source: str
    start: date
    end: date
    rows_fetched: int
    rows_loaded: int  # inserted or changed; 0 on an identical rerun
    rows_quarantined: int


def ingest(
    engine: sa.Engine,
    source: MarketDataSource,
    start: date,
    end: date,
    symbols: list[str] | None,
    run_id: str,
    max_failure_fraction: float,
    batch_symbols: int | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> IngestSummary:
    """Load sessions ``[start, end]`` of ``symbols`` (None: the source's universe).

    Symbols go in batches of ``batch_symbols`` (None: one batch), each fetched, validated and
    loaded in its own transaction, so a crash leaves whole batches or none of one. The gate
    applies per batch: a batch above ``max_failure_fraction`` loads nothing and stops the run
    (batches before it stay loaded; a rerun of the interval is a no-op for them).
    ``on_batch(done, total)`` is called after each batch (progress bars).
    """
    with stage_run(engine, run_id, "ingest", source=source.name, start=start, end=end) as run:
        wanted = sorted(set(symbols)) if symbols is not None else source.universe()
        batches = symbol_batches(wanted, batch_symbols)
        with engine.begin() as conn:  # partitions first, in their own short transaction
            ensure_partitions(conn, "bars", start, end)
        fetched = loaded = quarantined = rejected = 0
        for done, batch in enumerate(batches, start=1):
            part = _ingest_batch(engine, source, start, end, batch, run_id, max_failure_fraction)
            fetched += part.rows_fetched
            loaded += part.rows_loaded
            quarantined += part.rows_quarantined
            rejected += part.rows_rejected
            if on_batch is not None:
                on_batch(done, len(batches))
        summary = IngestSummary(source.name, start, end, fetched, loaded, quarantined)
        run.summary = {
            "rows_fetched": fetched,
            "rows_loaded": loaded,
            "rows_rejected": rejected,
            "batches": len(batches),
        }
    return summary


def symbol_batches(symbols: list[str], size: int | None) -> list[list[str]]:
    """``symbols`` cut into consecutive batches of at most ``size`` (None: one batch)."""
    if not symbols:
        return []
    step = size or len(symbols)
    return [symbols[i : i + step] for i in range(0, len(symbols), step)]


@dataclass(frozen=True)
class _BatchResult:
    rows_fetched: int
    rows_loaded: int
    rows_quarantined: int
    rows_rejected: int


def _ingest_batch(
    engine: sa.Engine,
    source: MarketDataSource,
    start: date,
    end: date,
    symbols: list[str],
    run_id: str,
    max_failure_fraction: float,
) -> _BatchResult:
    """Fetch, validate and load one batch of symbols; the bars go in one transaction."""
    frame = source.fetch_daily_bars(start, end, symbols)
    result = validate_bars(frame)
    passed = result.failure_fraction <= max_failure_fraction
    with engine.begin() as conn:
        quarantined = _quarantine(conn, result.rejected, source.name, run_id)
        _record_validation(conn, result, source.name, run_id, start, end, passed)
    if not passed:
        raise ValidationGateError(
            f"{len(result.rejected)} of {len(frame)} bars ({result.failure_fraction:.1%}) "
            f"failed validation, above MAX_QUARANTINE_FRACTION={max_failure_fraction:.1%}; "
            f"nothing from this batch ({symbols[0]} … {symbols[-1]}) was loaded. Inspect the "
            f"quarantine table (run_id '{run_id}'), fix the source, then rerun."
        )
    with engine.begin() as conn:
        loaded = upsert_bars(conn, result.valid, source.name)
    return _BatchResult(len(frame), loaded, quarantined, len(result.rejected))


def _json_value(value: object) -> object:
    """A raw value as JSON: missing as null, NaN and infinities as text, times as ISO text."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value if isinstance(value, int | float | str | bool) else str(value)


def _quarantine(conn: sa.Connection, rejected: pd.DataFrame, source: str, run_id: str) -> int:
    """Insert rejected rows; a row already quarantined (same source, raw, rule) is skipped."""
    rows = []
    for record in rejected.to_dict("records"):
        raw = {c: _json_value(record.get(c)) for c in BAR_COLUMNS}
        raw_json = json.dumps(raw, sort_keys=True)
        digest = hashlib.sha256(f"{source}|{raw_json}|{record['expectation']}".encode()).hexdigest()
        rows.append(
            {
                "h": digest,
                "src": source,
                "sym": raw["symbol"],
                "d": raw["session_date"],
                "exp": record["expectation"],
                "reason": record["reason"],
                "raw": raw_json,
                "r": run_id,
            }
        )
    if not rows:
        return 0
    result = conn.execute(
        sa.text(
            "INSERT INTO quarantine (row_hash, source, symbol, session_date, expectation, reason, "
            "raw, run_id) VALUES (:h, :src, :sym, CAST(:d AS date), :exp, :reason, "
            "CAST(:raw AS jsonb), :r) ON CONFLICT (row_hash) DO NOTHING"
        ),
        rows,
    )
    return result.rowcount


def _record_validation(
    conn: sa.Connection,
    result: ValidationResult,
    source: str,
    run_id: str,
    start: date,
    end: date,
    passed: bool,
) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO validation_runs (run_id, source, suite, start_date, end_date, "
            "rows_checked, rows_failed, success, summary) "
            "VALUES (:r, :s, :suite, :a, :b, :n, :f, :ok, CAST(:summary AS jsonb))"
        ),
        {
            "r": run_id,
            "s": source,
            "suite": result.summary.get("suite", "bars"),
            "a": start,
            "b": end,
            "n": result.summary.get("rows", 0),
            "f": len(result.rejected),
            "ok": passed,
            "summary": json.dumps(result.summary),
        },
    )
