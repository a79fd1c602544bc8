"""The ``pipeline_runs`` log: one row per stage execution, with its parameters and summary.

This is the only table a rerun may add to; the data tables are idempotent.

:func:`stage_run` is also the observability hook of every stage: it binds the run identity
(``run_id``, ``stage``, ``session_date`` when the stage has one) to every log line written
inside it, and records the stage's outcome, duration and summary in the Prometheus series
(pushed to ``PUSHGATEWAY_URL`` when set).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from pipelines.monitoring import metrics
from pipelines.monitoring.logging import bound_run, ensure_logging, get_logger

log = get_logger(__name__)


class StageRun:
    """Handle given to the body of :func:`stage_run`; set ``summary`` before leaving."""

    def __init__(self, run_id: str, stage: str) -> None:
        self.run_id = run_id
        self.stage = stage
        self.summary: dict[str, Any] = {}


@contextmanager
def stage_run(engine: sa.Engine, run_id: str, stage: str, **params: Any) -> Iterator[StageRun]:
    """Record a stage's start, then its success (with ``summary``) or its failure."""
    ensure_logging()
    with engine.begin() as conn:
        row_id = conn.execute(
            sa.text(
                "INSERT INTO pipeline_runs (run_id, stage, status, params) "
                "VALUES (:r, :s, 'running', CAST(:p AS jsonb)) RETURNING id"
            ),
            {"r": run_id, "s": stage, "p": json.dumps(params, default=str)},
        ).scalar_one()
    run = StageRun(run_id, stage)
    session_date = params.get("session_date") or params.get("as_of")
    with bound_run(run_id=run_id, stage=stage, session_date=session_date):
        log.info("stage started", params=params)
        started = time.monotonic()
        try:
            yield run
        except Exception as exc:
            _finish(engine, row_id, "failed", run.summary, f"{type(exc).__name__}: {exc}")
            log.error("stage failed", error=f"{type(exc).__name__}: {exc}")
            _observe(stage, "failed", time.monotonic() - started, run.summary, params)
            raise
        _finish(engine, row_id, "success", run.summary, None)
        log.info("stage succeeded", summary=run.summary)
        _observe(stage, "success", time.monotonic() - started, run.summary, params)


def _observe(stage: str, status: str, seconds: float, summary: dict, params: dict) -> None:
    from pipelines.config import get_settings

    metrics.record_stage(stage, status, seconds, summary, params)
    metrics.push(get_settings().pushgateway_url, {"job_name": stage})


def _finish(engine: sa.Engine, row_id: int, status: str, summary: dict, error: str | None) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE pipeline_runs SET status = :st, summary = CAST(:su AS jsonb), "
                "error = :e, finished_at = now() WHERE id = :id"
            ),
            {"st": status, "su": json.dumps(summary, default=str), "e": error, "id": row_id},
        )
