"""Ingest: fetch bars from a source, pass them through the gate, load what passed.

Symbols go in batches (``INGEST_BATCH_SYMBOLS``), each fetched, validated and loaded in its own
transaction. Rejected rows go to ``quarantine`` with the failed expectation, a reason and the
raw values; each batch's validation summary goes to ``validation_runs``. When a batch's
rejected fraction exceeds the threshold, nothing of that batch is loaded and
:class:`ValidationGateError` stops the run (and everything downstream of it): no trading on bad
data. Symbols the vendor failed on are named in a :class:`DataSourceError` raised after every
good symbol's bars are loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines import calendar
from pipelines.errors import DataSourceError, ValidationGateError
from pipelines.runlog import stage_run
from pipelines.sources.base import BAR_COLUMNS, MarketDataSource, PartialFetchError
from pipelines.validation import Limits, ValidationResult, validate_bars
from pipelines.warehouse import validation
from pipelines.warehouse.bars import read_bars, upsert_bars
from pipelines.warehouse.corporate_actions import (
    load_corporate_actions,
    read_corporate_actions,
)
from pipelines.warehouse.partitions import ensure_partitions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestSummary:
    source: str
    start: date
    end: date
    rows_fetched: int
    rows_loaded: int  # inserted or changed; 0 on an identical rerun
    rows_quarantined: int
    data_docs: str | None = None  # the GX Data Docs index.html of this run, when built
    failed_symbols: dict[str, str] = field(default_factory=dict)  # symbol -> vendor's reason


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
    *,
    corporate_actions: pd.DataFrame | None = None,
    data_docs_root: Path | None = None,
    empty_symbol_policy: str = "fail",
    actions_on_error: str = "fail",
) -> IngestSummary:
    """Load sessions ``[start, end]`` of ``symbols`` (None: the source's universe).

    Batches of ``batch_symbols`` (None: one batch) each load in one transaction, so a crash
    leaves whole batches or none of one; the gate applies per batch (batches before a failing
    one stay loaded; a rerun of the interval is a no-op for them). ``on_batch(done, total)`` is
    called after each batch (progress bars).

    ``corporate_actions`` (symbol, ex_date, kind, value) explain price jumps to the gate; when
    None, the source's actions are fetched into ``corporate_actions`` first (vendors that have
    them) and the table's rows for these symbols are used. ``data_docs_root``: build GX Data
    Docs under ``<root>/gx`` (see docs/validation.md).

    Completeness: every requested symbol × session ends as a stored bar, a quarantined row or
    a missing session named in ``validation_runs.summary``. A symbol the vendor sent nothing
    for fails the run after the others are loaded (``empty_symbol_policy="fail"``) or is
    recorded in the run's summary (``"record"``). A permanent error of the corporate-actions
    endpoint fails the run with one line (``actions_on_error="fail"``) or is recorded as a
    warning and the bars load without actions (``"warn"``).
    """
    with stage_run(engine, run_id, "ingest", source=source.name, start=start, end=end) as run:
        wanted = sorted(set(symbols)) if symbols is not None else source.universe()
        batches = symbol_batches(wanted, batch_symbols)
        with engine.begin() as conn:  # partitions first, in their own short transaction
            ensure_partitions(conn, "bars", start, end)
        warnings: list[str] = []
        if corporate_actions is None:
            warnings += _load_actions(engine, source, start, end, wanted, actions_on_error)
            corporate_actions = read_corporate_actions(engine, start, end, wanted)
        parts = []
        for done, batch in enumerate(batches, start=1):
            parts.append(
                _ingest_batch(
                    engine,
                    source,
                    start,
                    end,
                    batch,
                    run_id,
                    max_failure_fraction,
                    corporate_actions,
                    data_docs_root,
                    empty_symbol_policy,
                )
            )
            if on_batch is not None:
                on_batch(done, len(batches))
        failed = {s: r for part in parts for s, r in part.failed_symbols.items()}
        without_data = {s: r for part in parts for s, r in part.without_data.items()}
        summary = IngestSummary(
            source.name,
            start,
            end,
            sum(p.rows_fetched for p in parts),
            sum(p.rows_loaded for p in parts),
            sum(p.rows_quarantined for p in parts),
            next((p.data_docs for p in reversed(parts) if p.data_docs), None),
            failed,
        )
        run.summary = {
            "rows_fetched": summary.rows_fetched,
            "rows_loaded": summary.rows_loaded,
            "rows_rejected": sum(p.rows_rejected for p in parts),
            "batches": len(batches),
            "missing_sessions": sum(p.missing_sessions for p in parts),
            "failed_symbols": failed,
            "symbols_without_data": without_data,
            "warnings": warnings,
            "data_docs": summary.data_docs,
        }
        for line in [*warnings, *(f"{s}: {r}" for s, r in sorted(without_data.items()))]:
            log.warning("ingest run_id=%s recorded=%s", run_id, line)
        log.info(
            "ingest run_id=%s source=%s batches=%d rows_fetched=%d rows_loaded=%d "
            "rows_quarantined=%d failed_symbols=%d data_docs=%s",
            run_id,
            source.name,
            len(batches),
            summary.rows_fetched,
            summary.rows_loaded,
            summary.rows_quarantined,
            len(failed),
            summary.data_docs or "-",
        )
        if failed:
            reasons = "; ".join(f"{s}: {r}" for s, r in sorted(failed.items()))
            raise DataSourceError(
                f"{source.name} failed for {len(failed)} symbol(s) ({reasons}); the other "
                f"symbols' {summary.rows_loaded} new bars were loaded. Fix or drop those symbols "
                "(UNIVERSE / --symbols) and rerun the interval."
            )
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
    missing_sessions: int
    data_docs: str | None
    failed_symbols: dict[str, str]
    without_data: dict[str, str] = field(default_factory=dict)  # recorded, not failed


def _load_actions(
    engine: sa.Engine,
    source: MarketDataSource,
    start: date,
    end: date,
    symbols: list[str],
    on_error: str,
) -> list[str]:
    """Fetch and store the source's corporate actions; the warnings to record (``warn``)."""
    try:
        load_corporate_actions(engine, source, start, end, symbols)
    except DataSourceError as exc:
        if on_error != "warn":
            raise
        return [f"corporate actions not loaded ({exc}); bars were checked without them"]
    return []


def _ingest_batch(
    engine: sa.Engine,
    source: MarketDataSource,
    start: date,
    end: date,
    symbols: list[str],
    run_id: str,
    max_failure_fraction: float,
    corporate_actions: pd.DataFrame | None,
    data_docs_root: Path | None,
    empty_symbol_policy: str = "fail",
) -> _BatchResult:
    """Fetch, validate and load one batch of symbols; the bars go in one transaction."""
    try:
        frame, failed, no_data = source.fetch_daily_bars(start, end, symbols), {}, set()
    except PartialFetchError as exc:  # the good symbols' bars still go through the gate
        frame, failed = exc.result.bars, dict(exc.result.failures)
        no_data = set(exc.result.no_data)
    without_data: dict[str, str] = {}
    if empty_symbol_policy == "record":
        without_data = {s: failed.pop(s) for s in sorted(no_data & set(failed))}
    if frame.empty and (failed or without_data):  # nothing came back for this batch
        return _BatchResult(0, 0, 0, 0, 0, None, failed, without_data)
    result = validate_bars(
        frame,
        corporate_actions,
        start=start,
        end=end,
        run_id=run_id,
        data_docs_root=data_docs_root,
        history=_recent_bars(engine, start, symbols),
        symbols=symbols,
    )
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
    return _BatchResult(
        len(frame),
        loaded,
        quarantined,
        len(result.rejected),
        result.summary.get("missing_sessions", {}).get("total", 0),
        result.data_docs,
        failed,
        without_data,
    )


def _recent_bars(engine: sa.Engine, start: date, symbols: list[str] | None) -> pd.DataFrame:
    """Loaded bars of the few sessions before ``start``: the gate's stale and jump context."""
    before = calendar.sessions(start - timedelta(days=30), start - timedelta(days=1))
    if not before:
        return pd.DataFrame(columns=list(BAR_COLUMNS))
    lookback = Limits.from_settings().stale_sessions
    return read_bars(engine, before[-lookback:][0], before[-1], symbols)


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


def _vendor_json(item: object) -> object:
    """The vendor's item as JSON (it came as JSON: only non-finite floats need text)."""
    if isinstance(item, dict):
        return {str(k): _vendor_json(v) for k, v in item.items()}
    if isinstance(item, list):
        return [_vendor_json(v) for v in item]
    return _json_value(item)


def _quarantine(conn: sa.Connection, rejected: pd.DataFrame, source: str, run_id: str) -> int:
    """Insert rejected rows; a row already quarantined (same source, raw, rule) is skipped."""
    rows = []
    for record in rejected.to_dict("records"):
        raw: dict[str, object] = {c: _json_value(record.get(c)) for c in BAR_COLUMNS}
        if "raw" in record:  # what the vendor sent, before any parsing
            raw["vendor"] = _vendor_json(record["raw"])
        raw_json = json.dumps(raw, sort_keys=True)
        digest = hashlib.sha256(f"{source}|{raw_json}|{record['expectation']}".encode()).hexdigest()
        rows.append(
            {
                "row_hash": digest,
                "source": source,
                "symbol": raw["symbol"] if isinstance(raw["symbol"], str) else None,
                "session_date": raw["session_date"],
                "expectation": record["expectation"],
                "reason": record["reason"],
                "raw": raw_json,
                "run_id": run_id,
            }
        )
    return validation.insert_quarantine(conn, rows)


def _record_validation(
    conn: sa.Connection,
    result: ValidationResult,
    source: str,
    run_id: str,
    start: date,
    end: date,
    passed: bool,
) -> None:
    validation.insert_run(
        conn,
        run_id,
        source,
        result.summary.get("suite", "bars"),
        start,
        end,
        result.summary.get("rows", 0),
        len(result.rejected),
        passed,
        json.dumps(result.summary),
    )
