"""The equity marks repository: ``equity_marks``, the points of the realized equity curve
already valued (the valuation and the rules of when a mark still holds live in
:mod:`pipelines.risk.pnl`).

A mark is keyed by its ``session_date`` and records what it rests on: the initial cash, the
fills dated on or before its session (their count and summed cash flows) and the bars'
version when it was valued (the newest ``bars.ingested_at``). :func:`through` reads on the
caller's connection (one valuation, one connection); :func:`replace` is a whole write. Money
is USD.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa


def through(conn: sa.Connection, as_of: date) -> list[sa.Row]:
    """The marks (session_date, equity, initial_cash, fills, fills_cash, bars_version) on or
    before ``as_of``, oldest first."""
    return list(
        conn.execute(
            sa.text(
                "SELECT session_date, equity, initial_cash, fills, fills_cash, bars_version "
                "FROM equity_marks WHERE session_date <= :d ORDER BY session_date"
            ),
            {"d": as_of},
        ).all()
    )


def replace(
    engine: sa.Engine, after: date | None, as_of: date, marks: list[dict[str, Any]]
) -> None:
    """Delete the marks after ``after`` (from the first when None) through ``as_of`` and write
    ``marks`` (keys: the table's columns; at least one), in one transaction."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "DELETE FROM equity_marks WHERE session_date <= :b "
                "AND session_date > coalesce(CAST(:a AS date), '-infinity')"
            ),
            {"a": after, "b": as_of},
        )
        conn.execute(
            sa.text(
                "INSERT INTO equity_marks (session_date, equity, initial_cash, fills, "
                "fills_cash, bars_version) VALUES (:session_date, :equity, :initial_cash, "
                ":fills, :fills_cash, :bars_version) "
                "ON CONFLICT (session_date) DO UPDATE SET equity = EXCLUDED.equity, "
                "initial_cash = EXCLUDED.initial_cash, fills = EXCLUDED.fills, "
                "fills_cash = EXCLUDED.fills_cash, bars_version = EXCLUDED.bars_version"
            ),
            marks,
        )
