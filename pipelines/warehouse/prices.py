"""Prices read from ``bars``: the one home of the read helpers the planner, the gate, order
sizing and reconciliation share (they used to import each other for them)."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa


def last_closes(engine: sa.Engine, as_of: date, symbols: list[str]) -> dict[str, float]:
    """Each symbol's latest close on or before ``as_of`` (USD)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT DISTINCT ON (symbol) symbol, close FROM bars WHERE symbol = ANY(:s) "
                "AND session_date <= :d ORDER BY symbol, session_date DESC"
            ),
            {"s": symbols, "d": as_of},
        ).all()
    return dict(rows)
