"""Broker accounts: the cash each broker's account started with (``broker_accounts``, USD).

The simulated venue writes its own account row (it is the venue's book); this module reads.
"""

from __future__ import annotations

import sqlalchemy as sa


def initial_cash(engine: sa.Engine, broker: str) -> float | None:
    """The cash the broker's account started with, or None when the warehouse has no account
    for it (a real broker's account lives at the broker)."""
    with engine.connect() as conn:
        cash = conn.execute(
            sa.text("SELECT initial_cash FROM broker_accounts WHERE broker = :b"),
            {"b": broker},
        ).scalar()
    return None if cash is None else float(cash)
