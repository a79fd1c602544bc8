"""The broker accounts repository: ``broker_accounts``, one row per broker name, and the
``positions`` held in them.

The simulated venue opens its account there (:mod:`pipelines.execution.brokers.simulated`)
and keeps its cash and positions (it writes them itself: the venue's book is its own); the
row's initial cash is what realized P&L is measured from. A broker without a row (Alpaca) is
measured from ``INITIAL_CAPITAL``. The reads here are what the cockpit and the backtest's
equivalence show of that book. Money is USD, quantities shares.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa


def initial_cash(engine: sa.Engine, broker: str) -> float | None:
    """The cash ``broker``'s account started with, or None when it has no row."""
    with engine.connect() as conn:
        value = conn.execute(
            sa.text("SELECT initial_cash FROM broker_accounts WHERE broker = :b"), {"b": broker}
        ).scalar()
    return None if value is None else float(value)


def held(conn: sa.Connection, broker: str) -> list[sa.Row]:
    """``broker``'s positions (symbol, qty, avg_price) other than zero, by symbol."""
    return list(
        conn.execute(
            sa.text(
                "SELECT symbol, qty, avg_price FROM positions WHERE broker = :b AND qty <> 0 "
                "ORDER BY symbol"
            ),
            {"b": broker},
        ).all()
    )


def positions_frame(conn: sa.Connection) -> pd.DataFrame:
    """Every position row (symbol, qty as float), by symbol."""
    return pd.read_sql(
        sa.text("SELECT symbol, qty::float8 AS qty FROM positions ORDER BY symbol"), conn
    )
