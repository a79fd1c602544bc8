"""PostgreSQL session advisory locks, keyed by a namespace and a text key (``hashtext(key)``).

A lock belongs to the database session that took it: it is held across that connection's
transactions until it is unlocked there, or the session ends (a holder that dies releases it).
So lock and unlock must run on the same connection, which the caller keeps open in between;
the caller also ends the transaction each statement opens. Namespaces are the callers'.
"""

from __future__ import annotations

import sqlalchemy as sa


def try_lock(conn: sa.Connection, namespace: int, key: str) -> bool:
    """Take the lock for ``conn``'s session; False at once (no wait) when another holds it."""
    return bool(
        conn.execute(
            sa.text("SELECT pg_try_advisory_lock(:c, hashtext(:k))"), {"c": namespace, "k": key}
        ).scalar_one()
    )


def unlock(conn: sa.Connection, namespace: int, key: str) -> None:
    """Release the lock ``conn``'s session took with :func:`try_lock`."""
    conn.execute(sa.text("SELECT pg_advisory_unlock(:c, hashtext(:k))"), {"c": namespace, "k": key})
