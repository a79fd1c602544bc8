"""Reconciliation: the broker reports, the ledger follows, and the two must agree.

Run at the start of every rebalance and after submission. Any difference — an order one side
does not know, or positions that the fills do not explain — raises ReconciliationError and
blocks trading until a person resolves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from pipelines.config import Settings
from pipelines.errors import ReconciliationError
from pipelines.execution.brokers.base import Broker
from pipelines.execution.orders import last_closes, record_broker_state

OPEN_STATUSES = ("planned", "accepted", "partially_filled")


@dataclass(frozen=True)
class ReconcileReport:
    fills_made: int
    orders_checked: int
    orders_updated: int
    open_orders: int


def reconcile(engine: sa.Engine, broker: Broker, settings: Settings) -> ReconcileReport:
    fills_made = broker.process_fills()
    with engine.connect() as conn:
        open_orders = conn.execute(
            sa.text(
                "SELECT client_order_id, status FROM orders WHERE broker = :b AND status = ANY(:st)"
            ),
            {"b": broker.name, "st": list(OPEN_STATUSES)},
        ).all()
        ledger_positions: dict[str, Decimal] = dict(
            conn.execute(
                sa.text(
                    "SELECT f.symbol, sum(CASE f.side WHEN 'buy' THEN f.qty ELSE -f.qty END) "
                    "FROM fills f JOIN orders o USING (client_order_id) WHERE o.broker = :b "
                    "GROUP BY f.symbol"
                ),
                {"b": broker.name},
            ).all()
        )
    problems, updated, still_open = [], 0, 0
    for coid, status in open_orders:
        order = broker.get_order_by_client_id(coid)
        if order is None:
            if status != "planned":  # planned and unknown is a send that has not happened yet
                problems.append(f"{coid} is {status} in the ledger but unknown to {broker.name}")
            still_open += 1
            continue
        updated += record_broker_state(engine, coid, order, source="reconcile")
        still_open += order.status in OPEN_STATUSES
    held = broker.get_positions()
    for symbol in sorted(set(held) | {s for s, q in ledger_positions.items() if q}):
        if held.get(symbol, Decimal(0)) != ledger_positions.get(symbol, Decimal(0)):
            problems.append(
                f"{symbol}: broker holds {held.get(symbol, 0)}, ledger fills say "
                f"{ledger_positions.get(symbol, 0)}"
            )
    if problems:
        raise ReconciliationError(
            "ledger and broker disagree; trading is blocked until this is "
            "resolved: " + "; ".join(problems[:20])
        )
    return ReconcileReport(fills_made, len(open_orders), updated, still_open)


def portfolio_summary(engine: sa.Engine, broker: Broker, settings: Settings, as_of: date) -> dict:
    """Cash, positions valued at the last close on or before ``as_of``, equity and P&L (USD)."""
    held = broker.get_positions()
    prices = last_closes(engine, as_of, list(held))
    positions_value = sum(float(q) * prices[s] for s, q in held.items())
    cash = broker.get_cash()
    with engine.connect() as conn:
        initial = conn.execute(
            sa.text("SELECT initial_cash FROM broker_accounts WHERE broker = :b"),
            {"b": broker.name},
        ).scalar()
    initial = float(initial) if initial is not None else settings.initial_capital
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
