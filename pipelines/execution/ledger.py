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
The statements that read and write the ledger live in :mod:`pipelines.warehouse.orders`.

Fills: the broker reports an order's cumulative filled quantity and average price; the ledger
turns the increase into ``fills`` rows (``{client_order_id}-{n}``), unless the broker wrote
them itself (the simulated broker does), so positions can be checked against fills for both.

Broker reports (:func:`apply_broker_states`; :func:`apply_broker_state` is a batch of one) are
judged by the machine above and by one more rule: money state only moves forward. A report
whose filled quantity is below what the ledger holds (a late or replayed partial fill) or
above the quantity ordered is refused with its reason, like a forbidden transition; a report
of exactly what the ledger holds is a no-op (a redelivery). The sender's answers
(:func:`record_broker_states`) drop the refusals the ledger is already past (a stale answer:
the stream recorded a later state first) and raise on any other.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from pipelines.errors import ReconciliationError
from pipelines.execution.brokers.base import BrokerOrder
from pipelines.warehouse import orders

log = logging.getLogger(__name__)

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
        current = orders.locked_status(conn, client_order_id)
    if current is None:
        raise LedgerError(f"order {client_order_id} is not in the ledger")
    if current == new and new != PARTIALLY_FILLED:
        if columns:
            orders.update(conn, client_order_id, None, columns)
        return False
    if not can_move(current, new):
        raise LedgerError(
            f"order {client_order_id}: {current} -> {new} is not an allowed transition; "
            "the ledger and the broker disagree, check the order at the broker"
        )
    orders.update(conn, client_order_id, new, columns, (source, detail))
    return True


def record_broker_states(
    engine: sa.Engine, reports: Sequence[tuple[str, BrokerOrder]], source: str
) -> BatchResult:
    """Move the ledger to what the broker answered for each order, in one transaction.

    A report the ledger is already past (another source, e.g. the trade-update stream,
    recorded a later state first) is stale: it is logged and dropped. Any other refusal is a
    disagreement: :class:`LedgerError` is raised after the batch's other reports are written.
    """
    if not reports:
        return BatchResult(0, 0, ())
    with engine.begin() as conn:
        result = apply_broker_states(conn, reports, source)
    for late in (r for r in result.refused if r.stale):
        log.info("stale broker answer dropped: %s", late.reason)
    conflicts = [r.reason for r in result.refused if not r.stale]
    if conflicts:
        raise LedgerError("; ".join(conflicts[:3]) + (" …" if len(conflicts) > 3 else ""))
    return result


def apply_broker_state(conn: sa.Connection, coid: str, order: BrokerOrder, source: str) -> bool:
    """One broker report inside the caller's transaction: True if the ledger changed.

    A batch of one: the same checks as :func:`apply_broker_states`, but a refusal raises
    :class:`LedgerError` (nothing is written) instead of being returned.
    """
    held = _hold(conn, [coid])
    plan = _plan([(coid, order)], held, source)
    if plan.refused:
        raise LedgerError(plan.refused[0].reason)
    if plan.applied:
        _write(conn, plan, source)
    return plan.applied > 0


@dataclass(frozen=True)
class Refused:
    """A broker report the ledger did not apply: its place in the batch, and why."""

    index: int
    client_order_id: str
    reason: str
    stale: bool = False  # the ledger is already past it (a late report, not a disagreement)


@dataclass(frozen=True)
class BatchResult:
    """What :func:`apply_broker_states` did with a batch of broker reports."""

    applied: int  # reports that moved the ledger (one order event each)
    unchanged: int  # reports of what the ledger already held (redeliveries)
    refused: tuple[Refused, ...]


def apply_broker_states(
    conn: sa.Connection, reports: Sequence[tuple[str, BrokerOrder]], source: str
) -> BatchResult:
    """Apply a batch of broker reports, in their order, inside the caller's transaction.

    Set-based: whatever the batch's size, the batch's orders are locked in one
    ``SELECT … FOR UPDATE`` (ordered by ``client_order_id``, so two processors holding
    overlapping batches wait for each other instead of deadlocking), their fills are summed in
    one statement, each report is judged by the state machine against the state the previous
    ones left, and the orders, events and fills are written in one statement over arrays.
    A report the machine forbids (a transition backwards, a filled quantity that shrinks or
    exceeds the order, an unknown order or status) is refused with its reason and the rest
    applied. Should the write itself fail on one order's data (the database refusing a
    value), each order is written alone in a savepoint and only the failing ones are refused.
    """
    if not reports:
        return BatchResult(0, 0, ())
    plan = _plan(reports, _hold(conn, [coid for coid, _ in reports]), source)
    refused = list(plan.refused)
    if plan.applied:
        try:
            with conn.begin_nested():
                _write(conn, plan, source)
        except (sa.exc.IntegrityError, sa.exc.DataError):
            refused += _write_one_by_one(conn, plan, source)
    failed = len(refused) - len(plan.refused)
    return BatchResult(
        plan.applied - failed, plan.unchanged, tuple(sorted(refused, key=lambda r: r.index))
    )


@dataclass
class _Held:
    """An order as the ledger holds it, moved along as a batch's reports are judged."""

    status: str
    qty: Decimal  # shares ordered
    filled_qty: Decimal  # shares filled, as the broker last reported
    fill_qty: Decimal  # shares in its fills rows
    fill_value: float  # USD: sum of qty * price over its fills rows
    fills: int  # its fills rows


@dataclass
class _Plan:
    """The writes a batch comes to (``orders``: the final columns of each order moved)."""

    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)  # n: the report's index
    fills: list[dict[str, Any]] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    applied: int = 0
    unchanged: int = 0


def _hold(conn: sa.Connection, coids: Sequence[str]) -> dict[str, _Held]:
    """Lock the orders (in ``client_order_id`` order) and read them with their fills' totals.

    The totals are read by a second statement on purpose: under READ COMMITTED it sees what
    a concurrent transaction that held the lock before us committed (its fills included).
    """
    ids = sorted({c for c in coids if "\x00" not in c})  # text cannot hold NUL: not ours
    held = {
        row.client_order_id: _Held(row.status, row.qty, row.filled_qty, Decimal(0), 0.0, 0)
        for row in orders.lock_many(conn, ids)
    }
    if held:
        for coid, qty, value, count in orders.fill_totals(conn, list(held)):
            h = held[coid]
            h.fill_qty, h.fill_value, h.fills = Decimal(qty), float(value), int(count)
    return held


def _plan(reports: Sequence[tuple[str, BrokerOrder]], held: dict[str, _Held], source: str) -> _Plan:
    """Judge each report against the state the previous ones left (nothing is written)."""
    plan, now = _Plan(), datetime.now(UTC)
    for index, (coid, order) in enumerate(reports):
        h = held.get(coid)
        if h is None:
            plan.refused.append(Refused(index, coid, f"order {coid} is not in the ledger"))
            continue
        if order.status == h.status and order.filled_qty == h.filled_qty:
            plan.unchanged += 1
            continue
        reason = _refusal(h, coid, order)
        if reason is not None:
            plan.refused.append(Refused(index, coid, reason, _behind(h, order)))
            continue
        h.status, h.filled_qty = order.status, order.filled_qty
        plan.orders[coid] = {
            "client_order_id": coid,
            "status": order.status,
            "broker_order_id": order.broker_order_id,
            "filled_qty": order.filled_qty,
            "filled_avg_price": order.filled_avg_price,
        }
        detail = {
            "broker_order_id": order.broker_order_id,
            "filled_qty": str(order.filled_qty),
            "broker_status": order.broker_status or order.status,
        }
        plan.events.append(
            {"n": index, "client_order_id": coid, "status": order.status, "detail": detail}
        )
        plan.applied += 1
        fill = _new_fill(h, coid, order, now)
        if fill is not None:
            plan.fills.append(fill)
    return plan


def _refusal(held: _Held, coid: str, order: BrokerOrder) -> str | None:
    """Why the state machine refuses ``order`` for an order in state ``held`` (None: it may
    apply). Money state only moves forward."""
    if order.status not in STATUSES:
        return f"order {coid}: status {order.status!r} is not one of the ledger's"
    if not order.filled_qty.is_finite() or order.filled_qty < 0:
        return f"order {coid}: filled quantity {order.filled_qty} is not a share count"
    price = order.filled_avg_price
    if order.filled_qty > 0 and price is not None and not (math.isfinite(price) and price > 0):
        return f"order {coid}: average fill price {price} is not a price"
    if order.status != held.status and not can_move(held.status, order.status):
        return (
            f"order {coid}: {held.status} -> {order.status} is not an allowed transition; "
            "the ledger and the broker disagree, check the order at the broker"
        )
    if order.filled_qty < held.filled_qty:
        return (
            f"order {coid}: filled quantity {held.filled_qty} -> {order.filled_qty} would go "
            "back (a late or replayed update)"
        )
    if order.filled_qty > held.qty:
        return f"order {coid}: filled quantity {order.filled_qty} exceeds the {held.qty} ordered"
    return None


def _behind(held: _Held, order: BrokerOrder) -> bool:
    """Whether the ledger holds a later state than ``order`` reports: fewer shares filled,
    or a status from which the ledger's own can be reached."""
    if not order.filled_qty.is_finite():
        return False
    return order.filled_qty < held.filled_qty or (
        order.status != held.status and can_move(order.status, held.status)
    )


def _new_fill(h: _Held, coid: str, order: BrokerOrder, now: datetime) -> dict[str, Any] | None:
    """The ``fills`` row for the broker's cumulative fill beyond the rows the order has (the
    simulated broker writes its own; then there is nothing beyond)."""
    if order.filled_qty <= 0 or order.filled_avg_price is None:
        return None
    delta = order.filled_qty - h.fill_qty
    if delta <= 0:
        return None
    value = float(order.filled_qty) * order.filled_avg_price - h.fill_value
    h.fills += 1
    h.fill_qty, h.fill_value = order.filled_qty, h.fill_value + value
    return {
        "fill_id": f"{coid}-{h.fills}",
        "client_order_id": coid,
        "symbol": order.symbol,
        "side": order.side,
        "qty": delta,
        "price": value / float(delta),
        "filled_at": order.updated_at or now,
    }


def _write(conn: sa.Connection, plan: _Plan, source: str) -> None:
    orders.write_batch(conn, list(plan.orders.values()), plan.fills, plan.events, source)


def _write_one_by_one(conn: sa.Connection, plan: _Plan, source: str) -> list[Refused]:
    """Write each order's part of ``plan`` in its own savepoint; refuse the reports of the
    orders the database rejects, with its error as the reason."""
    refused: list[Refused] = []
    for coid, columns in plan.orders.items():
        one = _Plan(
            orders={coid: columns},
            events=[e for e in plan.events if e["client_order_id"] == coid],
            fills=[f for f in plan.fills if f["client_order_id"] == coid],
        )
        try:
            with conn.begin_nested():
                _write(conn, one, source)
        except (sa.exc.IntegrityError, sa.exc.DataError) as exc:
            reason = f"order {coid}: the warehouse refused it: {str(exc.orig).splitlines()[0]}"
            refused += [Refused(e["n"], coid, reason) for e in one.events]
    return refused
