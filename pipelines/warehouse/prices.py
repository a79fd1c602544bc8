"""Prices read from ``bars``: the one home of the read helpers the planner, the gate, order
sizing, reconciliation, the P&L valuation and the stress replays share (they used to import
each other for them). :func:`last_closes_before` reads on the caller's connection."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import pandas as pd
import sqlalchemy as sa


def last_closes(engine: sa.Engine, as_of: date, symbols: list[str]) -> dict[str, float]:
    """Each symbol's latest close on or before ``as_of`` (USD)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(  # the bars of as_of in one index scan; an index probe for each one stale
                "WITH exact AS MATERIALIZED (SELECT symbol, close FROM bars "
                "WHERE session_date = :d AND symbol = ANY(CAST(:s AS text[]))) "
                "SELECT symbol, close FROM exact UNION ALL "
                "SELECT w.symbol, b.close FROM unnest(CAST(:s AS text[])) AS w(symbol) "
                "CROSS JOIN LATERAL (SELECT close FROM bars WHERE symbol = w.symbol "
                "AND session_date <= :d ORDER BY session_date DESC LIMIT 1) b "
                "WHERE NOT EXISTS (SELECT 1 FROM exact e WHERE e.symbol = w.symbol)"
            ),
            {"s": symbols, "d": as_of},
        ).all()
    return dict(rows)


def last_closes_before(
    conn: sa.Connection, before: Mapping[str, date], since: date
) -> pd.DataFrame:
    """Each symbol's latest close (symbol, session_date, close; USD) on or after ``since`` and
    before its own date in ``before``; a symbol with no such bar is left out."""
    return pd.read_sql(
        sa.text(
            "SELECT w.symbol, b.session_date, b.close "
            "FROM unnest(CAST(:s AS text[]), CAST(:a AS date[])) AS w(symbol, a) "
            "CROSS JOIN LATERAL (SELECT session_date, close FROM bars "
            "WHERE symbol = w.symbol AND session_date < w.a AND session_date >= :start "
            "ORDER BY session_date DESC LIMIT 1) b"
        ),
        conn,
        params={"s": list(before), "a": list(before.values()), "start": since},
    )
