"""Reconciliation: the broker reports, the ledger follows, and the two must agree.

Run at the start of every rebalance and after submission, for either broker. It compares:

- orders: every broker order must be in the ledger (same symbol, side and quantity), and every
  ledger order past ``submitted`` must be at the broker; the ledger takes each order's state
  and cumulative fill from the broker (transitions through :mod:`pipelines.execution.ledger`);
- fills: the ledger's filled quantity per order must equal the broker's;
- positions: the broker's positions must equal the net of the ledger's fills (this assumes the
  account trades only through this ledger — a paper account with manual trades will differ).

Each call compares what can still change: the broker's orders submitted since the last clean
reconciliation began listing (by the broker's clock, less its ``listing_overlap``: see
:class:`~pipelines.execution.brokers.base.Broker`), and every ledger order that is not
finished. An order finished in the ledger and older than that was compared when it
finished and cannot move again; the positions check still covers every fill. Without a clean
reconciliation on record the whole history is listed.

``planned``/``submitted`` orders the broker does not know are sends still to happen (a rerun
resumes them), not differences. Every reconciliation is stored
(:mod:`pipelines.warehouse.reconciliations`); any
difference raises :class:`ReconciliationError`, and submission refuses to run while the
broker's latest reconciliation failed, until a person resolves it and reconciles again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa

from pipelines.config import Settings
from pipelines.errors import ReconciliationError
from pipelines.execution import ledger
from pipelines.execution.brokers.base import Broker, BrokerOrder
from pipelines.warehouse import accounts, orders, reconciliations
from pipelines.warehouse.prices import last_closes

log = logging.getLogger(__name__)

OPEN_STATUSES = tuple(sorted(ledger.OPEN | ledger.UNSENT | {ledger.DEAD_LETTER}))


@dataclass(frozen=True)
class ReconcileReport:
    fills_made: int
    orders_checked: int
    orders_updated: int
    open_orders: int
    pending_sends: int = 0


def reconcile(
    engine: sa.Engine, broker: Broker, settings: Settings, run_id: str | None = None
) -> ReconcileReport:
    """Bring the ledger up to the broker's state and check the two agree; raise if not."""
    fills_made = broker.process_fills()
    since = _last_clean_listing(engine, broker)
    listed_at = broker.now()
    at_broker = {o.client_order_id: o for o in broker.list_orders(since)}
    ours = _ledger_orders(engine, broker.name, since, list(at_broker))
    problems: list[str] = []
    changes: list[tuple[str, BrokerOrder]] = []  # orders the broker has moved on
    updated = still_open = pending = 0
    for coid in sorted(set(at_broker) - set(ours)):
        o = at_broker[coid]
        problems.append(
            f"{coid} ({o.side} {o.qty} {o.symbol}, {o.status}) is at {broker.name} "
            "but not in the ledger"
        )
    for coid, row in sorted(ours.items()):
        order = at_broker.get(coid)
        if order is None and row.status in OPEN_STATUSES:
            order = broker.get_order_by_client_id(coid)  # a list may lag or be truncated
        if order is None:
            if row.status in ledger.UNSENT or row.status == ledger.DEAD_LETTER:
                pending += row.status in ledger.UNSENT
                continue
            problems.append(f"{coid} is {row.status} in the ledger but unknown to {broker.name}")
            continue
        if (order.symbol, order.side, order.qty) != (row.symbol, row.side, Decimal(row.qty)):
            problems.append(
                f"{coid}: ledger has {row.side} {row.qty} {row.symbol}, {broker.name} has "
                f"{order.side} {order.qty} {order.symbol}"
            )
            continue
        if (order.status, order.filled_qty) == (row.status, Decimal(row.filled_qty)):
            still_open += order.status in ledger.OPEN  # agrees already: nothing to record
            continue
        changes.append((coid, order))
    if changes:  # the ledger follows the broker in one transaction, the state machine judging
        with engine.begin() as conn:
            result = ledger.apply_broker_states(conn, changes, source="reconcile")
        refused = {r.client_order_id for r in result.refused}
        problems += [r.reason for r in result.refused]
        updated = result.applied
        still_open += sum(o.status in ledger.OPEN for c, o in changes if c not in refused)
    problems += _fill_differences(engine, broker, at_broker, list(ours))
    problems += _position_differences(engine, broker)
    report = ReconcileReport(fills_made, len(ours), updated, still_open, pending)
    reconciliations.insert(
        engine,
        broker.name,
        run_id,
        report.orders_checked,
        report.orders_updated,
        problems,
        listed_at,
    )
    if problems:
        log.error("reconcile broker=%s problems=%d: %s", broker.name, len(problems), problems[:5])
        raise ReconciliationError(
            f"ledger and {broker.name} disagree; trading is blocked until this is "
            "resolved: " + "; ".join(problems[:20])
        )
    log.info("reconcile broker=%s %s", broker.name, report)
    return report


def _last_clean_listing(engine: sa.Engine, broker: Broker) -> datetime | None:
    """Where this call's listing starts: the last clean reconciliation's listing time less
    the broker's ``listing_overlap``; None (the whole history) when there is none."""
    listed = reconciliations.last_clean_listing(engine, broker.name)
    return None if listed is None else listed - broker.listing_overlap


def _ledger_orders(
    engine: sa.Engine, broker: str, since: datetime | None, listed: list[str]
) -> dict[str, sa.Row]:
    """The ledger's orders to compare: all of them for a full listing, else the unfinished
    ones and those the broker listed."""
    unfinished = None if since is None else OPEN_STATUSES
    return {r.client_order_id: r for r in orders.of_broker(engine, broker, unfinished, listed)}


def _fill_differences(
    engine: sa.Engine, broker: Broker, at_broker: dict[str, BrokerOrder], compared: list[str]
) -> list[str]:
    """Each compared order's filled quantity in the ledger, in its fills and at the broker."""
    problems = []
    for coid, filled_qty, fills in orders.filled_and_fills(engine, broker.name, compared):
        reported = at_broker[coid].filled_qty if coid in at_broker else Decimal(filled_qty)
        if not Decimal(filled_qty) == Decimal(fills) == reported:
            problems.append(
                f"{coid}: {broker.name} reports {reported} filled, the ledger {filled_qty}, "
                f"its fills {fills}"
            )
    return problems


def _position_differences(engine: sa.Engine, broker: Broker) -> list[str]:
    ledger_positions = orders.net_fills(engine, broker.name)
    held = broker.get_positions()
    problems = []
    for symbol in sorted(set(held) | {s for s, q in ledger_positions.items() if q}):
        if held.get(symbol, Decimal(0)) != ledger_positions.get(symbol, Decimal(0)):
            problems.append(
                f"{symbol}: broker holds {held.get(symbol, 0)}, ledger fills say "
                f"{ledger_positions.get(symbol, 0)}"
            )
    return problems


def portfolio_summary(engine: sa.Engine, broker: Broker, settings: Settings, as_of: date) -> dict:
    """Cash, positions valued at the last close on or before ``as_of``, equity and P&L (USD)."""
    held = broker.get_positions()
    prices = last_closes(engine, as_of, list(held))
    positions_value = sum(float(q) * prices[s] for s, q in held.items())
    cash = broker.get_cash()
    initial = accounts.initial_cash(engine, broker.name)
    if initial is None:
        initial = settings.initial_capital
    equity = cash + positions_value
    return {
        "as_of": as_of.isoformat(),
        "positions": len(held),
        "cash": round(cash, 2),
        "positions_value": round(positions_value, 2),
        "equity": round(equity, 2),
        "initial_capital": initial,
        "pnl": round(equity - initial, 2),
    }
