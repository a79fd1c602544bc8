"""The broker accounts repository: ``broker_accounts``, one row per broker name.

The simulated venue opens its account there (:mod:`pipelines.execution.brokers.simulated`)
and keeps its cash; the row's initial cash is what realized P&L is measured from. A broker
without a row (Alpaca) is measured from ``INITIAL_CAPITAL``. Money is USD.
"""

from __future__ import annotations

import sqlalchemy as sa


def initial_cash(engine: sa.Engine, broker: str) -> float | None:
    """The cash ``broker``'s account started with, or None when it has no row."""
    with engine.connect() as conn:
        value = conn.execute(
            sa.text("SELECT initial_cash FROM broker_accounts WHERE broker = :b"), {"b": broker}
        ).scalar()
    return None if value is None else float(value)
