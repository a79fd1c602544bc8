"""The controls repository: the ``controls`` table, one row per named control.

A row says whether its control is on, why (the reason as given: redact it before), and since
when (``updated_at``). The kill switch (:data:`KILL_SWITCH`) is the first control; a control
never set has no row. Its rules live in :mod:`pipelines.controls`.
"""

from __future__ import annotations

import sqlalchemy as sa

#: The kill switch's row: when on, no order is sent.
KILL_SWITCH = "kill_switch"


def write(engine: sa.Engine, name: str, enabled: bool, reason: str) -> None:
    """Set control ``name`` on (``enabled``) or off with ``reason``, stamped now."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO controls (name, enabled, reason) VALUES (:n, :e, :r) "
                "ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled, "
                "reason = excluded.reason, updated_at = now()"
            ),
            {"n": name, "e": enabled, "r": reason},
        )


def state(conn: sa.Connection, name: str) -> sa.Row | None:
    """Control ``name``'s ``enabled``, ``reason`` and ``updated_at``; None when never set."""
    return conn.execute(
        sa.text("SELECT enabled, reason, updated_at FROM controls WHERE name = :n"), {"n": name}
    ).one_or_none()
