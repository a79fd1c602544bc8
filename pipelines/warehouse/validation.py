"""The validation repository: ``validation_runs``, one row per validated batch, and
``quarantine``, the rows a batch rejected. The checks live in :mod:`pipelines.validation`,
the rows are made by :mod:`pipelines.ingest`, and the data-quality decision on
:func:`latest_covering` is the risk gate's.

A batch's row records its ingest run, source, suite, the sessions it covered
(``start_date``..``end_date``), how many rows it checked and rejected, whether it passed and
its summary. A quarantined row is keyed by its ``row_hash``: the same rejected row, quarantined
again, is skipped. The writes and the metrics' reads take a ``conn`` (a batch's quarantined
rows and its validation row are written in one transaction, the stream's with the minute bars
it loads; one scrape, one connection); :func:`latest_covering` is a whole read.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa


def insert_quarantine(conn: sa.Connection, rows: list[dict[str, Any]]) -> int:
    """Insert rejected rows (keys: row_hash, source, symbol, session_date, expectation, reason,
    raw as JSON text, run_id); return how many were new."""
    if not rows:  # executemany with no rows is an error, not a no-op
        return 0
    return conn.execute(
        sa.text(
            "INSERT INTO quarantine (row_hash, source, symbol, session_date, expectation, reason, "
            "raw, run_id) VALUES (:row_hash, :source, :symbol, CAST(:session_date AS date), "
            ":expectation, :reason, CAST(:raw AS jsonb), :run_id) "
            "ON CONFLICT (row_hash) DO NOTHING"
        ),
        rows,
    ).rowcount


def insert_run(
    conn: sa.Connection,
    run_id: str,
    source: str,
    suite: str,
    start: date,
    end: date,
    rows_checked: int,
    rows_failed: int,
    success: bool,
    summary: str,
) -> None:
    """Record a validated batch (``summary`` a JSON text)."""
    conn.execute(
        sa.text(
            "INSERT INTO validation_runs (run_id, source, suite, start_date, end_date, "
            "rows_checked, rows_failed, success, summary) "
            "VALUES (:r, :s, :suite, :a, :b, :n, :f, :ok, CAST(:summary AS jsonb))"
        ),
        {
            "r": run_id,
            "s": source,
            "suite": suite,
            "a": start,
            "b": end,
            "n": rows_checked,
            "f": rows_failed,
            "ok": success,
            "summary": summary,
        },
    )


def latest_covering(engine: sa.Engine, day: date) -> sa.Row | None:
    """The latest ingest run with a batch covering ``day``, over its batches that cover it:
    ``run_id``, ``success`` (every one passed), ``rows_failed``, ``rows_checked``; None when
    no batch covers ``day``."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT run_id, bool_and(success) AS success, sum(rows_failed) AS rows_failed, "
                "sum(rows_checked) AS rows_checked FROM validation_runs "
                "WHERE start_date <= :d AND end_date >= :d AND run_id = ("
                "  SELECT run_id FROM validation_runs WHERE start_date <= :d AND end_date >= :d "
                "  ORDER BY id DESC LIMIT 1) "
                "GROUP BY run_id"
            ),
            {"d": day},
        ).one_or_none()


def last_validations(conn: sa.Connection) -> list[sa.Row]:
    """Each source's last validation batch: ``source``, ``rows_checked``, ``rows_failed``,
    ``success``."""
    return list(
        conn.execute(
            sa.text(
                "SELECT source, rows_checked, rows_failed, success FROM validation_runs v "
                "WHERE id = (SELECT max(id) FROM validation_runs w WHERE w.source = v.source)"
            )
        ).all()
    )


def quarantined_rows(conn: sa.Connection) -> int:
    return int(conn.execute(sa.text("SELECT count(*) FROM quarantine")).scalar_one())
