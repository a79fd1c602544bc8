"""Prices read from ``bars``: the one home of the read helpers the planner, the gate, order
sizing and reconciliation share (they used to import each other for them)."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa


def last_closes(engine: sa.Engine, as_of: date, symbols: list[str]) -> dict[str, float]:
    """Each symbol's latest close on or before ``as_of`` (USD)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(  # one index probe per symbol, however long its history
                "SELECT w.symbol, b.close FROM unnest(CAST(:s AS text[])) AS w(symbol) "
                "CROSS JOIN LATERAL (SELECT close FROM bars WHERE symbol = w.symbol "
                "AND session_date <= :d ORDER BY session_date DESC LIMIT 1) b"
            ),
            {"s": symbols, "d": as_of},
        ).all()
    return dict(rows)
