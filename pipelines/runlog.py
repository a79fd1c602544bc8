"""The ``pipeline_runs`` log: one row per stage execution, with its parameters and summary.

This is the only table a rerun may add to; the data tables are idempotent. Its rows are
written through :mod:`pipelines.warehouse.runs`; what they store is redacted here.

:func:`stage_run` is also the observability hook of every stage: it binds the run identity
(``run_id``, ``stage``, ``session_date`` when the stage has one) to every log line written
inside it, and records the stage's outcome, duration and summary in the Prometheus series
(pushed to ``PUSHGATEWAY_URL`` when set).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from pipelines.monitoring import metrics
from pipelines.monitoring.logging import bound_run, ensure_logging, get_logger, redact
from pipelines.warehouse import runs

log = get_logger(__name__)


class StageRun:
    """Handle given to the body of :func:`stage_run`; set ``summary`` before leaving."""

    def __init__(self, run_id: str, stage: str) -> None:
        self.run_id = run_id
        self.stage = stage
        self.summary: dict[str, Any] = {}


@contextmanager
def stage_run(engine: sa.Engine, run_id: str, stage: str, **params: Any) -> Iterator[StageRun]:
    """Record a stage's start, then its success (with ``summary``) or its failure.

    An interruption (Ctrl-C, SIGTERM turned into ``KeyboardInterrupt`` by the CLI) is a
    failure too; runs of processes that died without a word are swept at the next start
    (:func:`sweep_stale_runs`). Every stored text passes :func:`redact`.
    """
    ensure_logging()
    sweep_stale_runs(engine)
    row_id = runs.start(
        engine,
        run_id,
        stage,
        redact(json.dumps(params, default=str)),
        os.getpid(),
        socket.gethostname(),
        _process_started(os.getpid()),
    )
    run = StageRun(run_id, stage)
    session_date = params.get("session_date") or params.get("as_of")
    with bound_run(run_id=run_id, stage=stage, session_date=session_date):
        log.info("stage started", params=params)
        started = time.monotonic()
        try:
            yield run
        except BaseException as exc:
            error = _describe(exc)
            _finish(engine, row_id, "failed", run.summary, error)
            log.error("stage failed", error=error)
            _observe(stage, "failed", time.monotonic() - started, run.summary, params)
            raise
        _finish(engine, row_id, "success", run.summary, None)
        log.info("stage succeeded", summary=run.summary)
        _observe(stage, "success", time.monotonic() - started, run.summary, params)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        return f"interrupted ({type(exc).__name__}): the stage stopped before it finished"
    return f"{type(exc).__name__}: {exc}"


def _process_started(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), None if there is no such process."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:  # dead, not yet reaped by its parent
            return None
        return float(process.create_time())
    except (psutil.Error, OSError):
        return None


def sweep_stale_runs(engine: sa.Engine) -> int:
    """Mark failed the ``running`` rows of this host whose process is gone; return how many.

    A process is gone when no process has its pid, or the one that has it started at another
    time than the one recorded (the pid was reused).
    Rows of other hosts are left to their own host's sweep.
    """
    host = socket.gethostname()
    rows = runs.running_on(engine, host)
    stale = []
    for row in rows:
        began = _process_started(row.pid)
        reused = (
            began is not None
            and row.process_started is not None
            and abs(began - row.process_started) > 0.5
        )
        if began is None or reused:
            stale.append(row)
    for row in stale:
        runs.fail_if_running(
            engine,
            row.id,
            f"interrupted: process {row.pid} on {host} ended without finishing "
            "(killed?); rerun the stage (it is idempotent)",
        )
        log.warning("stale run marked failed", pipeline_run=row.id, pid=row.pid)
    return len(stale)


def _observe(stage: str, status: str, seconds: float, summary: dict, params: dict) -> None:
    from pipelines.config import get_settings

    metrics.record_stage(stage, status, seconds, summary, params)
    metrics.push(get_settings().pushgateway_url, {"job_name": stage})


def _finish(engine: sa.Engine, row_id: int, status: str, summary: dict, error: str | None) -> None:
    runs.finish(
        engine,
        row_id,
        status,
        redact(json.dumps(summary, default=str)),
        None if error is None else redact(error),
    )
