"""The ingest gate: run the GX suite on a bar frame and split it into valid and rejected rows.

A row is rejected by the first rule it fails (in :func:`bars_suite.rules` order); the rejected
frame keeps the raw values as received plus ``expectation`` and ``reason``. Nothing is dropped
silently: ``len(valid) + len(rejected) == len(frame)``. Valid rows come back with canonical
dtypes (float64 prices and volume, UTC ``ts``, ``datetime.date`` session dates).

With ``data_docs_root`` the suite runs in a file-backed GX context under
``<data_docs_root>/gx`` (suite, validation results and the ``local_site`` Data Docs are kept
there, one page per run named by ``run_id``); without it, in an ephemeral in-memory context.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines import calendar
from pipelines.errors import ValidationGateError
from pipelines.sources.base import BAR_COLUMNS
from pipelines.validation.bars_suite import Limits, rules, suite_id
from pipelines.validation.prepare import (
    NUMBER_COLUMNS,
    TEXT_CHECKS,
    check_frame,
    check_schema,
    missing_sessions,
)
from pipelines.validation.vendor import DAILY, MINUTE

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no usage analytics over the network
log = logging.getLogger(__name__)
logging.getLogger("great_expectations").setLevel(logging.WARNING)

GX_COLUMNS = (
    *BAR_COLUMNS,
    "type_error",
    "ts_zone",
    *TEXT_CHECKS,
    "session_close",
    "key_check",
    "copy_index",
    "stale_repeat",
    "close_jump",
)
DATA_SOURCE, ASSET, BATCH = "bars", "bars_frame", "whole_frame"


@dataclass
class ValidationResult:
    valid: pd.DataFrame
    rejected: pd.DataFrame
    summary: dict = field(default_factory=dict)

    @property
    def failure_fraction(self) -> float:
        total = len(self.valid) + len(self.rejected)
        return len(self.rejected) / total if total else 0.0

    @property
    def data_docs(self) -> str | None:
        """Path of the Data Docs ``index.html`` when the run built them."""
        return self.summary.get("data_docs")


def data_docs_index(root: Path) -> Path:
    """Where the Data Docs of a context under ``root`` are: open this file in a browser."""
    return root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"


def _quiet(context: Any) -> None:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.variables.analytics_enabled = False


def _ephemeral_context() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    return gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            progress_bars=ProgressBarsConfig(globally=False),
            analytics_enabled=False,
        ),
    )


@contextlib.contextmanager
def _project_lock(data_docs_root: Path | None) -> Iterator[None]:
    """Hold an exclusive lock on the GX file project under ``data_docs_root`` (no-op without).

    Concurrent ingests (an Airflow backfill runs several at once) share that project; GX's file
    stores are not safe for concurrent writers (a suite read mid-write fails with TypeError).
    """
    if data_docs_root is None:
        yield
        return
    data_docs_root.mkdir(parents=True, exist_ok=True)
    with (data_docs_root / ".mltrade-gx.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


COMPLETE = {"result_format": "COMPLETE"}  # every failing row's index, not a sample


@lru_cache(maxsize=8)
def _gx(data_docs_root: Path | None, limits: Limits) -> tuple[Any, Any, Any]:
    """(batch definition, suite, checkpoint or None) for ``limits``, built once per process.

    Without a root there is no checkpoint: the batch is validated directly and no result is
    stored (storing serializes every failing row's value, which is what makes a run slow).
    """
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction

    if data_docs_root is None:
        context = _ephemeral_context()
    else:
        context = gx.get_context(mode="file", project_root_dir=str(data_docs_root))
        _quiet(context)
    source = context.data_sources.add_or_update_pandas(DATA_SOURCE)
    asset = source.add_dataframe_asset(ASSET)
    batch_definition = asset.add_batch_definition_whole_dataframe(BATCH)
    suite = gx.ExpectationSuite(name=suite_id())
    for rule in rules(limits):
        suite.add_expectation(rule.expectation)
    suite = context.suites.add_or_update(suite)
    if data_docs_root is None:
        return batch_definition, suite, None
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"{suite_id()}_on_{ASSET}", data=batch_definition, suite=suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=f"{suite_id()}_gate",
            validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="data_docs")],
            result_format=COMPLETE,
        )
    )
    return batch_definition, suite, checkpoint


def _run_suite(
    check: pd.DataFrame, limits: Limits, run_id: str, data_docs_root: Path | None
) -> dict[str, list[int]]:
    """Rule name -> positional indexes of the rows that fail it, computed by GX."""
    from great_expectations.core.run_identifier import RunIdentifier

    with _project_lock(data_docs_root):
        # A file project is read afresh under the lock: objects cached by this process would
        # be stale once another process (a concurrent ingest) rewrote the project's stores.
        build = _gx if data_docs_root is None else _gx.__wrapped__
        batch_definition, suite, checkpoint = build(data_docs_root, limits)
        if checkpoint is None:
            batch = batch_definition.get_batch(batch_parameters={"dataframe": check})
            validations = [batch.validate(suite, result_format=COMPLETE)]
        else:
            outcome = checkpoint.run(
                batch_parameters={"dataframe": check}, run_id=RunIdentifier(run_name=run_id)
            )
            validations = list(outcome.run_results.values())
    failing: dict[str, list[int]] = {}
    for validation in validations:
        for result in validation.results:
            config = result.expectation_config
            if config is None or "rule" not in (config.meta or {}):  # fail closed
                raise ValidationGateError("GX returned a result it cannot attribute to a rule")
            info = result.exception_info or {}
            if info.get("raised_exception"):
                raise ValidationGateError(
                    f"GX could not evaluate rule {config.meta['rule']}: "
                    f"{info.get('exception_message')}; nothing was loaded"
                )
            failing[config.meta["rule"]] = [
                int(i) for i in result.result.get("unexpected_index_list") or []
            ]
    return failing


def _canonical(valid: pd.DataFrame, check: pd.DataFrame) -> pd.DataFrame:
    """Valid rows with canonical dtypes (their values already passed every type check)."""
    out = valid.copy()
    for column in ("ts", *NUMBER_COLUMNS):
        if out[column].dtype != check[column].dtype:  # e.g. object after one bad value
            out[column] = check.loc[valid.index, column]
    out["session_date"] = check.loc[valid.index, "session_date"]  # naive midnight -> date
    if out["symbol"].dtype == object:  # every valid symbol is text by now
        out["symbol"] = out["symbol"].astype("str")
    return out


def validate_bars(
    frame: pd.DataFrame,
    corporate_actions: pd.DataFrame | None = None,
    *,
    start: date | None = None,
    end: date | None = None,
    run_id: str = "adhoc",
    limits: Limits | None = None,
    data_docs_root: Path | None = None,
    history: pd.DataFrame | None = None,
    symbols: list[str] | None = None,
    timeframe: str = DAILY,
) -> ValidationResult:
    """Split a canonical bar frame into rows to load and rows to quarantine.

    ``symbols``: the symbols asked for; the missing-sessions report names every one of them
    that has a gap, including one with no row at all. ``timeframe``: ``1Day`` or ``1Min``.
    ``start``/``end`` also bound the window: a row of a session outside it is quarantined.

    ``corporate_actions``: optional ``(symbol, ex_date, kind, value)`` frame; a close jump on
    the ex-date of a split is not flagged. ``start``/``end``: the requested sessions, for the
    missing-sessions report (default: the batch's own range). ``limits``: default from the
    settings ``STALE_BAR_SESSIONS`` and ``MAX_CLOSE_JUMP``. ``history``: bars already loaded
    just before the batch (e.g. the last ``STALE_BAR_SESSIONS`` sessions), so a one-session
    batch still has a previous close and a stale run can span batches; never returned.

    Raises :class:`BarSchemaError` when a column is missing (nothing of the batch can be
    checked), and :class:`ValidationGateError` for an empty batch when ``[start, end]`` holds
    sessions.
    """
    check_schema(frame)
    if frame.empty and start is not None and end is not None:
        due = calendar.sessions(start, end)
        if due:
            raise ValidationGateError(
                f"the source returned no bars for {len(due)} NYSE sessions in [{start}, {end}]: "
                'an empty response is not "no news". Nothing was loaded; check the symbols, '
                "the dates and the vendor's status, then rerun."
            )
    frame = frame.reset_index(drop=True)
    limits = limits or Limits.from_settings()
    suite_rules = rules(limits)
    check = check_frame(
        frame, corporate_actions, limits, history, start=start, end=end, timeframe=timeframe
    )
    failing = (
        _run_suite(check[list(GX_COLUMNS)], limits, run_id, data_docs_root) if len(frame) else {}
    )
    expectation = pd.Series(None, index=frame.index, dtype="object")
    for rule in suite_rules:  # first failed rule wins
        rows = [i for i in failing.get(rule.name, []) if pd.isna(expectation.iat[i])]
        expectation.iloc[rows] = rule.name
    bad = expectation.notna()
    rejected = frame.loc[bad].copy()
    rejected["expectation"] = expectation[bad]
    by_name = {rule.name: rule for rule in suite_rules}
    computed = ["type_error", "ts_zone", "close_jump", "session_date", *TEXT_CHECKS]
    explain = rejected.join(check.loc[bad, computed].add_prefix("_"))
    rejected["reason"] = [
        by_name[name].reason(row)
        for name, row in zip(rejected["expectation"], explain.to_dict("records"), strict=True)
    ]
    summary: dict[str, Any] = {
        "suite": suite_id(),
        "run_id": run_id,
        "rows": len(frame),
        "valid": int((~bad).sum()),
        "rejected": int(bad.sum()),
        "failed": {name: len(ix) for name, ix in failing.items() if ix},
        "quarantined_by": {str(k): int(v) for k, v in expectation[bad].value_counts().items()},
        "limits": {
            "stale_sessions": limits.stale_sessions,
            "max_close_jump": limits.max_close_jump,
        },
        "missing_sessions": missing_sessions(check, start, end, symbols=symbols),
    }
    if data_docs_root is not None and len(frame):
        summary["data_docs"] = str(data_docs_index(data_docs_root))
    log.info(summary_line(summary))
    valid = _canonical(frame.loc[~bad], check).reset_index(drop=True)
    return ValidationResult(valid, rejected, summary)


MINUTE_LIMITS = Limits(stale_sessions=10**9, max_close_jump=0.5)  # no stale rule on minutes


def validate_minute_bars(
    frame: pd.DataFrame,
    *,
    start: date | None = None,
    end: date | None = None,
    symbols: list[str] | None = None,
    run_id: str = "adhoc",
    history: pd.DataFrame | None = None,
    limits: Limits = MINUTE_LIMITS,
) -> ValidationResult:
    """Split a frame of one-minute bars into rows to load and rows to quarantine.

    The one entry point for minute bars, batch or streamed: the same rules as daily ingest
    (types, the vendor's raw time, NYSE session, window, prices, OHLC consistency, VWAP, trade
    count, zero volume with a move, exact copies, disagreeing duplicates, jumps) except that a
    bar's time is its *end* (``ts`` = start + 1 minute, UTC) and must lie in the regular hours
    of ``session_date``, and identical consecutive minutes are not "stale" (quiet stocks trade
    flat). ``frame`` is a canonical bar frame (:data:`pipelines.sources.base.BAR_COLUMNS`,
    optionally the vendor columns); ``history``: the minutes just before, for the jump rule.
    Returns :class:`ValidationResult`: ``valid`` (canonical dtypes) and ``rejected`` (raw
    values plus ``expectation`` and ``reason``); ``len(valid) + len(rejected) == len(frame)``.
    An empty frame is valid (nothing to judge).
    """
    if frame.empty:
        check_schema(frame)
        return ValidationResult(frame.copy(), frame.assign(expectation=[], reason=[]), {})
    return validate_bars(
        frame,
        None,
        start=start,
        end=end,
        run_id=run_id,
        limits=limits,
        history=history,
        symbols=symbols,
        timeframe=MINUTE,
    )


def summary_line(summary: dict) -> str:
    """The summary as one structured ``key=value`` log line (no per-symbol detail)."""
    failed = ",".join(f"{k}:{v}" for k, v in sorted(summary.get("failed", {}).items())) or "none"
    fields = {
        "event": "validation",
        "run_id": summary.get("run_id"),
        "suite": summary.get("suite"),
        "rows": summary.get("rows"),
        "valid": summary.get("valid"),
        "rejected": summary.get("rejected"),
        "failed": failed,
        "missing_sessions": summary.get("missing_sessions", {}).get("total", 0),
        "data_docs": summary.get("data_docs", "-"),
    }
    return " ".join(f"{k}={v}" for k, v in fields.items())
