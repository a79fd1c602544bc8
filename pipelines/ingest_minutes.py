"""Minute-bar ingest: one session's one-minute bars, through the gate, into ``minute_bars``.

The same gate as daily ingest (:func:`pipelines.validation.validate_minute_bars`): rejected
rows go to ``quarantine`` with their reason and the vendor's raw item, the batch's summary to
``validation_runs``, and a batch above ``MAX_QUARANTINE_FRACTION`` loads nothing. Each session
is one transaction (idempotent: an identical rerun changes nothing).

**Reconciliation** (after the load): the session rebuilt from its stored minutes (the
``daily_from_minute`` view or continuous aggregate) is compared with the daily bar of the same
session in ``bars``, when both exist. Open, high, low and close must agree within the relative
tolerance ``MINUTE_RECONCILE_TOLERANCE`` (default 0.2 %: feeds differ by odd lots and late
prints); the minutes' volume must not exceed the daily volume by more than that fraction (a
daily bar may count trades outside regular hours, so fewer minute shares is normal). Mismatches
are recorded per symbol in ``validation_runs.summary["reconciliation"]`` and logged; they do
not unload anything, since which of the two series is wrong is unknown.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date

import pandas as pd
import sqlalchemy as sa

from pipelines.errors import ConfigurationError, ValidationGateError
from pipelines.ingest import _quarantine, _record_validation
from pipelines.runlog import stage_run
from pipelines.sources.base import MarketDataSource, PartialFetchError
from pipelines.validation import ValidationResult, validate_minute_bars
from pipelines.warehouse.bars import daily_from_minutes, read_bars, upsert_minute_bars
from pipelines.warehouse.partitions import ensure_partitions

log = logging.getLogger(__name__)
PRICES = ("open", "high", "low", "close")


@dataclass(frozen=True)
class MinuteSummary:
    session: date
    rows_fetched: int
    rows_loaded: int
    rows_quarantined: int
    failed_symbols: dict[str, str] = field(default_factory=dict)
    reconciliation: dict = field(default_factory=dict)


def ingest_minutes(
    engine: sa.Engine,
    source: MarketDataSource,
    session: date,
    symbols: list[str],
    run_id: str,
    max_failure_fraction: float,
    tolerance: float = 0.002,
) -> MinuteSummary:
    """Load the one-minute bars of ``session`` for ``symbols`` (see the module docstring)."""
    fetch = getattr(source, "fetch_minute_bars", None)
    if fetch is None:
        raise ConfigurationError(
            f"DATA_SOURCE={source.name} has no minute bars (only Alpaca has them: the sample "
            "data is daily); set DATA_SOURCE=alpaca with ALPACA_API_KEY/ALPACA_SECRET_KEY or "
            "the alpaca_data Airflow connection (docs/sources.md)"
        )
    with stage_run(engine, run_id, "ingest_minutes", source=source.name, session=session) as run:
        try:
            frame, failed = fetch(session, session, symbols), {}
        except PartialFetchError as exc:
            frame, failed = exc.result.bars, dict(exc.result.failures)
        with engine.begin() as conn:
            ensure_partitions(conn, "minute_bars", session, session)
        result = validate_minute_bars(
            frame, start=session, end=session, symbols=symbols, run_id=run_id
        )
        passed = result.failure_fraction <= max_failure_fraction
        with engine.begin() as conn:
            quarantined = _quarantine(conn, result.rejected, source.name, run_id)
            if not passed:
                _record_validation(conn, result, source.name, run_id, session, session, False)
        if not passed:
            raise ValidationGateError(
                f"{len(result.rejected)} of {len(frame)} minute bars of {session} "
                f"({result.failure_fraction:.1%}) failed validation, above "
                f"MAX_QUARANTINE_FRACTION={max_failure_fraction:.1%}; nothing was loaded. "
                f"Inspect the quarantine table (run_id '{run_id}') and rerun."
            )
        with engine.begin() as conn:
            loaded = upsert_minute_bars(conn, result.valid, source.name)
        report = reconcile(engine, session, symbols, tolerance)
        result.summary["reconciliation"] = report
        with engine.begin() as conn:
            _record_validation(conn, result, source.name, run_id, session, session, True)
        run.summary = {
            "session": session.isoformat(),
            "rows_fetched": len(frame),
            "rows_loaded": loaded,
            "rows_rejected": len(result.rejected),
            "failed_symbols": failed,
            "reconciliation": report,
        }
        _log(run_id, session, result, loaded, report)
    return MinuteSummary(session, len(frame), loaded, quarantined, failed, report)


def _log(run_id: str, session: date, result: ValidationResult, loaded: int, report: dict) -> None:
    log.info(
        "ingest_minutes run_id=%s session_date=%s rows_valid=%d rows_rejected=%d "
        "rows_loaded=%d reconciled=%d mismatches=%d",
        run_id, session, len(result.valid), len(result.rejected), loaded,
        report["checked"], len(report["mismatches"]),
    )  # fmt: skip
    for symbol, why in report["mismatches"].items():
        log.warning("reconciliation run_id=%s session_date=%s symbol=%s %s", run_id, session,
                    symbol, why)  # fmt: skip


def reconcile(engine: sa.Engine, session: date, symbols: list[str], tolerance: float) -> dict:
    """The session rebuilt from its minutes vs its daily bar, per symbol with both.

    Returns ``{"tolerance": t, "checked": n, "mismatches": {symbol: reason}}``.
    """
    minutes = daily_from_minutes(engine, session, symbols).set_index("symbol")
    daily = read_bars(engine, session, session, symbols).set_index("symbol")
    both = minutes.index.intersection(daily.index)
    mismatches: dict[str, str] = {}
    for symbol in both:
        why = _mismatch(minutes.loc[symbol], daily.loc[symbol], tolerance)
        if why:
            mismatches[str(symbol)] = why
    return {"tolerance": tolerance, "checked": len(both), "mismatches": mismatches}


def _mismatch(minute: pd.Series, day: pd.Series, tolerance: float) -> str | None:
    """Why the minutes' OHLCV disagrees with the daily bar beyond ``tolerance``, or None."""
    off = [
        f"{c} {minute[c]:g} from minutes vs {day[c]:g} daily"
        for c in PRICES
        if abs(float(minute[c]) - float(day[c])) > tolerance * abs(float(day[c]))
    ]
    if float(minute["volume"]) > float(day["volume"]) * (1 + tolerance):
        off.append(f"volume {minute['volume']:g} in minutes exceeds {day['volume']:g} daily")
    if not off:
        return None
    return "; ".join(off) + f" (tolerance {tolerance:.2%}, {int(minute['minutes'])} minutes)"
