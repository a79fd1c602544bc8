"""The reconciliations repository: each comparison of a broker with the ledger, as stored in
``reconciliations`` (what reconciling does lives in :mod:`pipelines.execution.reconcile`).

A row is one reconciliation of one broker: whether it was clean (``ok``), the orders it
checked and updated, its problems (a JSON list of sentences), and ``listed_at``, when the
broker's orders were listed (our clock). The latest row of a broker is the one with the
highest ``id``.
"""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa


def latest(engine: sa.Engine, broker: str) -> sa.Row | None:
    """The broker's latest reconciliation (ok, problems, at), or None when there is none."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT ok, problems, at FROM reconciliations WHERE broker = :b "
                "ORDER BY id DESC LIMIT 1"
            ),
            {"b": broker},
        ).one_or_none()


def last_clean_listing(engine: sa.Engine, broker: str) -> datetime | None:
    """When the broker's latest clean reconciliation listed its orders (None: no clean one)."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT listed_at FROM reconciliations WHERE broker = :b AND ok "
                "ORDER BY id DESC LIMIT 1"
            ),
            {"b": broker},
        ).scalar()


def insert(
    engine: sa.Engine,
    broker: str,
    run_id: str | None,
    orders_checked: int,
    orders_updated: int,
    problems: list[str],
    listed_at: datetime,
) -> None:
    """Store a reconciliation; it is clean (``ok``) when it found no problem."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO reconciliations (broker, run_id, ok, orders_checked, "
                "orders_updated, problems, listed_at) "
                "VALUES (:b, :r, :ok, :c, :u, CAST(:p AS jsonb), :at)"
            ),
            {
                "at": listed_at,
                "b": broker,
                "r": run_id,
                "ok": not problems,
                "c": orders_checked,
                "u": orders_updated,
                "p": json.dumps(problems),
            },
        )
