"""The runs repository: ``pipeline_runs``, one row per stage execution.

A row is inserted ``running`` when a stage starts, with the process that runs it (pid, host,
process start time), and finished ``success`` or ``failed`` with its summary and error.
Parameters, summaries and errors are stored as given: :mod:`pipelines.runlog` redacts them
first. Every write is its own transaction (a run's row must survive the stage's failure);
:func:`last_statuses` reads on the caller's connection.
"""

from __future__ import annotations

import sqlalchemy as sa


def start(
    engine: sa.Engine,
    run_id: str,
    stage: str,
    params: str,
    pid: int,
    host: str,
    process_started: float | None,
) -> int:
    """Insert a ``running`` row (``params`` a JSON text); return its id."""
    with engine.begin() as conn:
        return int(
            conn.execute(
                sa.text(
                    "INSERT INTO pipeline_runs (run_id, stage, status, params, pid, host, "
                    "process_started) VALUES (:r, :s, 'running', CAST(:p AS jsonb), :pid, "
                    ":host, :ps) RETURNING id"
                ),
                {"r": run_id, "s": stage, "p": params, "pid": pid, "host": host,
                 "ps": process_started},
            ).scalar_one()
        )  # fmt: skip


def finish(engine: sa.Engine, row_id: int, status: str, summary: str, error: str | None) -> None:
    """Close row ``row_id`` as ``status`` with ``summary`` (a JSON text) and ``error``."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE pipeline_runs SET status = :st, summary = CAST(:su AS jsonb), "
                "error = :e, finished_at = now() WHERE id = :id"
            ),
            {"st": status, "su": summary, "e": error, "id": row_id},
        )


def running_on(engine: sa.Engine, host: str) -> list[sa.Row]:
    """The ``id``, ``pid`` and ``process_started`` of ``host``'s rows still ``running``."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT id, pid, process_started FROM pipeline_runs "
                    "WHERE status = 'running' AND host = :h AND pid IS NOT NULL"
                ),
                {"h": host},
            ).all()
        )


def fail_if_running(engine: sa.Engine, row_id: int, error: str) -> None:
    """Mark row ``row_id`` failed with ``error``, unless it finished meanwhile."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE pipeline_runs SET status = 'failed', finished_at = now(), error = :e "
                "WHERE id = :id AND status = 'running'"
            ),
            {"id": row_id, "e": error},
        )


def last_statuses(conn: sa.Connection) -> dict[str, str]:
    """Each stage's status in its latest finished run (``success`` or ``failed``)."""
    return dict(
        conn.execute(
            sa.text(
                "SELECT DISTINCT ON (stage) stage, status FROM pipeline_runs "
                "WHERE status <> 'running' ORDER BY stage, id DESC"
            )
        ).all()
    )
