"""Ingest: fetch bars from a source, pass them through the gate, load what passed.

Rejected rows go to ``quarantine`` with the failed expectation, a reason and the raw values;
the run's validation summary goes to ``validation_runs``. When the rejected fraction exceeds
the threshold, nothing of the batch is loaded and :class:`ValidationGateError` stops the run
(and everything downstream of it): no trading on bad data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines import calendar
from pipelines.errors import ValidationGateError
from pipelines.runlog import stage_run
from pipelines.sources.base import BAR_COLUMNS, MarketDataSource
from pipelines.validation import Limits, ValidationResult, validate_bars
from pipelines.warehouse.bars import read_bars, upsert_bars

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


def ingest(
    engine: sa.Engine,
    source: MarketDataSource,
    start: date,
    end: date,
    symbols: list[str] | None,
    run_id: str,
    max_failure_fraction: float,
    *,
    corporate_actions: pd.DataFrame | None = None,
    data_docs_root: Path | None = None,
) -> IngestSummary:
    """Load sessions ``[start, end]`` of ``symbols`` (None: the source's universe).

    ``corporate_actions`` (symbol, ex_date, kind, value) explain price jumps to the gate; when
    None, those in the warehouse's ``corporate_actions`` table (if it exists) are used.
    ``data_docs_root``: build GX Data Docs under ``<root>/gx`` (see docs/validation.md).
    """
    with stage_run(engine, run_id, "ingest", source=source.name, start=start, end=end) as run:
        frame = source.fetch_daily_bars(start, end, symbols)
        if corporate_actions is None:
            corporate_actions = _stored_corporate_actions(engine, start, end)
        result = validate_bars(
            frame, corporate_actions, start=start, end=end, run_id=run_id,
            data_docs_root=data_docs_root, history=_recent_bars(engine, start, symbols),
        )
        passed = result.failure_fraction <= max_failure_fraction
        with engine.begin() as conn:
            quarantined = _quarantine(conn, result.rejected, source.name, run_id)
            _record_validation(conn, result, source.name, run_id, start, end, passed)
        if not passed:
            raise ValidationGateError(
                f"{len(result.rejected)} of {len(frame)} bars ({result.failure_fraction:.1%}) "
                f"failed validation, above MAX_QUARANTINE_FRACTION={max_failure_fraction:.1%}; "
                "nothing from this batch was loaded. Inspect the quarantine table "
                f"(run_id '{run_id}'), fix the source, then rerun."
            )
        with engine.begin() as conn:
            loaded = upsert_bars(conn, result.valid, source.name)
        summary = IngestSummary(
            source.name, start, end, len(frame), loaded, quarantined, result.data_docs
        )
        run.summary = {
            "rows_fetched": len(frame),
            "rows_loaded": loaded,
            "rows_rejected": len(result.rejected),
            "suite": result.summary.get("suite"),
            "missing_sessions": result.summary.get("missing_sessions", {}).get("total", 0),
            "data_docs": result.data_docs,
        }
        log.info(
            "ingest run_id=%s source=%s rows_fetched=%d rows_loaded=%d rows_quarantined=%d "
            "data_docs=%s", run_id, source.name, len(frame), loaded, quarantined,
            result.data_docs or "-",
        )
    return summary


def _recent_bars(engine: sa.Engine, start: date, symbols: list[str] | None) -> pd.DataFrame:
    """Loaded bars of the few sessions before ``start``: the gate's stale and jump context."""
    before = calendar.sessions(start - timedelta(days=30), start - timedelta(days=1))
    if not before:
        return pd.DataFrame(columns=list(BAR_COLUMNS))
    lookback = Limits.from_settings().stale_sessions
    return read_bars(engine, before[-lookback:][0], before[-1], symbols)


def _stored_corporate_actions(engine: sa.Engine, start: date, end: date) -> pd.DataFrame | None:
    """Corporate actions with an ex-date in ``[start, end]``; None before that table exists."""
    with engine.connect() as conn:
        if conn.execute(sa.text("SELECT to_regclass('corporate_actions')")).scalar() is None:
            return None
        return pd.read_sql(
            sa.text(
                "SELECT symbol, ex_date, kind, value FROM corporate_actions "
                "WHERE ex_date BETWEEN :a AND :b"
            ),
            conn,
            params={"a": start, "b": end},
        )


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
