"""The ``pipeline_runs`` log: one row per stage execution, with its parameters and summary.

This is the only table a rerun may add to; the data tables are idempotent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

log = logging.getLogger(__name__)


class StageRun:
    """Handle given to the body of :func:`stage_run`; set ``summary`` before leaving."""

    def __init__(self, run_id: str, stage: str) -> None:
        self.run_id = run_id
        self.stage = stage
        self.summary: dict[str, Any] = {}


@contextmanager
def stage_run(engine: sa.Engine, run_id: str, stage: str, **params: Any) -> Iterator[StageRun]:
    """Record a stage's start, then its success (with ``summary``) or its failure."""
    with engine.begin() as conn:
        row_id = conn.execute(
            sa.text(
                "INSERT INTO pipeline_runs (run_id, stage, status, params) "
                "VALUES (:r, :s, 'running', CAST(:p AS jsonb)) RETURNING id"
            ),
            {"r": run_id, "s": stage, "p": json.dumps(params, default=str)},
        ).scalar_one()
    run = StageRun(run_id, stage)
    log.info("stage=%s run_id=%s started params=%s", stage, run_id, params)
    try:
        yield run
    except Exception as exc:
        _finish(engine, row_id, "failed", run.summary, f"{type(exc).__name__}: {exc}")
        log.error("stage=%s run_id=%s failed: %s", stage, run_id, exc)
        raise
    _finish(engine, row_id, "success", run.summary, None)
    log.info("stage=%s run_id=%s succeeded summary=%s", stage, run_id, run.summary)


def _finish(engine: sa.Engine, row_id: int, status: str, summary: dict, error: str | None) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE pipeline_runs SET status = :st, summary = CAST(:su AS jsonb), "
                "error = :e, finished_at = now() WHERE id = :id"
            ),
            {"st": status, "su": json.dumps(summary, default=str), "e": error, "id": row_id},
        )
