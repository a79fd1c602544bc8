"""The orders ledger's state machine: the one place that moves an order from one state to another.

States (``orders.status``)::

    planned ─▶ submitted ─▶ accepted ─▶ partially_filled ─▶ filled
       │           │           │               │
       │           │           └───────────────┴─▶ cancelled | expired | rejected
       │           └─▶ dead_letter ─▶ submitted (a retry by command)
       └─▶ (any broker state: a rerun after a crash finds the order already at the broker)

``planned`` is the intent committed before any broker call; ``submitted`` is committed right
before the send (so a crash mid-send is visible); the broker's answer moves it on. Terminal:
filled, cancelled, rejected, expired. Every transition writes an ``order_events`` row with the
time and its source (``ledger`` | ``broker`` | ``reconcile`` | ``retry``). A transition the
machine does not allow raises :class:`LedgerError`: the ledger never goes backwards silently.

Fills: the broker reports an order's cumulative filled quantity and average price; the ledger
turns the increase into ``fills`` rows (``{client_order_id}-{n}``), unless the broker wrote
them itself (the simulated broker does), so positions can be checked against fills for both.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from pipelines.errors import ReconciliationError
from pipelines.execution.brokers.base import BrokerOrder

PLANNED, SUBMITTED, ACCEPTED, PARTIALLY_FILLED, FILLED = (
    "planned",
    "submitted",
    "accepted",
    "partially_filled",
    "filled",
)
CANCELLED, REJECTED, EXPIRED, DEAD_LETTER = "cancelled", "rejected", "expired", "dead_letter"

TERMINAL = frozenset({FILLED, CANCELLED, REJECTED, EXPIRED})
OPEN = frozenset({SUBMITTED, ACCEPTED, PARTIALLY_FILLED})  # at the broker, not finished
UNSENT = frozenset({PLANNED, SUBMITTED})  # the broker may not know it: ask before sending
_BROKER_STATES = frozenset({ACCEPTED, PARTIALLY_FILLED, FILLED, CANCELLED, REJECTED, EXPIRED})

TRANSITIONS: dict[str, frozenset[str]] = {
    PLANNED: frozenset({SUBMITTED, DEAD_LETTER}) | _BROKER_STATES,
    SUBMITTED: frozenset({DEAD_LETTER}) | _BROKER_STATES,
    ACCEPTED: frozenset({PARTIALLY_FILLED, FILLED, CANCELLED, REJECTED, EXPIRED}),
    PARTIALLY_FILLED: frozenset({PARTIALLY_FILLED, FILLED, CANCELLED, EXPIRED}),
    DEAD_LETTER: frozenset({SUBMITTED}) | _BROKER_STATES,
    FILLED: frozenset(),
    CANCELLED: frozenset(),
    REJECTED: frozenset(),
    EXPIRED: frozenset(),
}
STATUSES = frozenset(TRANSITIONS)


class LedgerError(ReconciliationError):
    """A transition the state machine forbids (e.g. ``filled`` back to ``accepted``)."""


def can_move(current: str, new: str) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


def transition(
    conn: sa.Connection,
    client_order_id: str,
    new: str,
    source: str,
    detail: dict[str, Any] | None = None,
    current: str | None = None,
    **columns: Any,
) -> bool:
    """Move one order to ``new`` (with extra ``orders`` columns), recording the event.

    Runs on the caller's transaction and locks the row (``current``: the caller locked it and
    read this status). Returns False when the order already is in ``new`` (nothing to record);
    raises :class:`LedgerError` for a forbidden move.
    """
    if current is None:
        current = conn.execute(
            sa.text("SELECT status FROM orders WHERE client_order_id = :c FOR UPDATE"),
            {"c": client_order_id},
        ).scalar_one_or_none()
    if current is None:
        raise LedgerError(f"order {client_order_id} is not in the ledger")
    if current == new and new != PARTIALLY_FILLED:
        if columns:
            update(conn, client_order_id, None, columns)
        return False
    if not can_move(current, new):
        raise LedgerError(
            f"order {client_order_id}: {current} -> {new} is not an allowed transition; "
            "the ledger and the broker disagree, check the order at the broker"
        )
    update(conn, client_order_id, new, columns, (source, detail))
    return True


def update(
    conn: sa.Connection,
    coid: str,
    status: str | None,
    columns: dict[str, Any],
    event_of: tuple[str, dict[str, Any] | None] | None = None,
) -> None:
    """Update the order's columns (and status) and, with ``event_of`` = (source, detail),
    record the event in the same statement (one round trip)."""
    sets = ["updated_at = now()"] + [f"{name} = :{name}" for name in columns]
    params = {"c": coid, **columns}
    if status is not None:
        sets.append("status = :status")
        params["status"] = status
    sql = f"UPDATE orders SET {', '.join(sets)} WHERE client_order_id = :c"
    if event_of is not None:
        sql = (
            f"WITH u AS ({sql} RETURNING client_order_id, status) "
            "INSERT INTO order_events (client_order_id, status, source, detail) "
            "SELECT client_order_id, status, :src, CAST(:d AS jsonb) FROM u"
        )
        params["src"] = event_of[0]
        params["d"] = json.dumps(event_of[1], default=str)
    conn.execute(sa.text(sql), params)


def event(
    conn: sa.Connection, coid: str, status: str, source: str, detail: dict[str, Any] | None
) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO order_events (client_order_id, status, source, detail) "
            "VALUES (:c, :st, :src, CAST(:d AS jsonb))"
        ),
        {"c": coid, "st": status, "src": source, "d": json.dumps(detail, default=str)},
    )


def record_broker_state(engine: sa.Engine, coid: str, order: BrokerOrder, source: str) -> bool:
    """Move the ledger to what the broker reports (status, id, fills); True if it changed."""
    with engine.begin() as conn:
        return apply_broker_state(conn, coid, order, source)


def apply_broker_state(conn: sa.Connection, coid: str, order: BrokerOrder, source: str) -> bool:
    """:func:`record_broker_state` inside the caller's transaction (the stream processor
    commits a batch of trade updates at once: one WAL flush, not one per update)."""
    row = conn.execute(
        sa.text("SELECT status, filled_qty FROM orders WHERE client_order_id = :c FOR UPDATE"),
        {"c": coid},
    ).one_or_none()
    if row is None:
        raise LedgerError(f"order {coid} is not in the ledger")
    new_fill = order.filled_qty != Decimal(row.filled_qty)
    if row.status == order.status and not new_fill:
        return False
    detail = {
        "broker_order_id": order.broker_order_id,
        "filled_qty": str(order.filled_qty),
        "broker_status": order.broker_status or order.status,
    }
    columns = {
        "broker_order_id": order.broker_order_id,
        "filled_qty": order.filled_qty,
        "filled_avg_price": order.filled_avg_price,
    }
    if row.status == order.status:  # more shares filled, same state: record the fill
        update(conn, coid, None, columns, (source, detail))
    else:
        transition(conn, coid, order.status, source, detail, row.status, **columns)
    _record_fills(conn, coid, order)
    return True


def _record_fills(conn: sa.Connection, coid: str, order: BrokerOrder) -> None:
    """Turn the broker's cumulative fill into ``fills`` rows (skipped if they exist already)."""
    if order.filled_qty <= 0 or order.filled_avg_price is None:
        return
    have_qty, have_value, count = conn.execute(
        sa.text(
            "SELECT coalesce(sum(qty), 0), coalesce(sum(qty * price), 0), count(*) "
            "FROM fills WHERE client_order_id = :c"
        ),
        {"c": coid},
    ).one()
    delta = order.filled_qty - Decimal(have_qty)
    if delta <= 0:
        return
    value = float(order.filled_qty) * order.filled_avg_price - float(have_value)
    conn.execute(
        sa.text(
            "INSERT INTO fills (fill_id, client_order_id, symbol, side, qty, price, filled_at) "
            "VALUES (:id, :c, :s, :side, :q, :p, :at) ON CONFLICT (fill_id) DO NOTHING"
        ),
        {
            "id": f"{coid}-{count + 1}",
            "c": coid,
            "s": order.symbol,
            "side": order.side,
            "q": delta,
            "p": value / float(delta),
            "at": order.updated_at or datetime.now(UTC),
        },
    )
