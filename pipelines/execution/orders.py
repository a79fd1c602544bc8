"""The orders ledger and exactly-once submission.

Order of events for one intent, each step committed before the next:
1. the ledger row (status ``planned``) is inserted — a unique ``client_order_id`` derived from
   (strategy, session, plan version, symbol, side), so a rerun inserts nothing new;
2. the broker is asked for that id; only if it does not know it is the order sent;
3. the ledger takes the broker's answer (``accepted``, with the broker's id).
A crash between any two steps is repaired by rerunning: step 2 finds what step 3 missed.
Once a plan has ledger rows, its intents are frozen: a rerun resumes them, never recomputes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from pipelines import calendar
from pipelines.config import Settings
from pipelines.errors import RiskLimitBreached
from pipelines.execution.brokers.base import Broker, BrokerOrder, OrderIntent, Side
from pipelines.portfolio.planner import PlanRef, target_weights
from pipelines.risk.kill_switch import assert_trading_allowed
from pipelines.runlog import stage_run

log = logging.getLogger(__name__)


def client_order_id(
    strategy: str, session_date: date, plan_version: int, symbol: str, side: str
) -> str:
    """Deterministic and at most 48 characters (Alpaca's limit): a readable prefix + hash."""
    digest = hashlib.sha256(
        f"{strategy}|{session_date.isoformat()}|{plan_version}|{symbol}|{side}".encode()
    ).hexdigest()[:20]
    return f"mlt-{session_date:%Y%m%d}-v{plan_version}-{digest}"


def last_closes(engine: sa.Engine, as_of: date, symbols: list[str]) -> dict[str, float]:
    """Each symbol's latest close on or before ``as_of`` (USD)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT DISTINCT ON (symbol) symbol, close FROM bars WHERE symbol = ANY(:s) "
                "AND session_date <= :d ORDER BY symbol, session_date DESC"
            ),
            {"s": symbols, "d": as_of},
        ).all()
    return dict(rows)


def plan_orders(
    engine: sa.Engine, settings: Settings, plan: PlanRef, broker: Broker
) -> list[OrderIntent]:
    """Orders that move the broker's current positions to the plan's target weights.

    Equity and share counts use the previous session's closes; shares are rounded down; orders
    under ``MIN_ORDER_NOTIONAL`` are dropped; sells come first so they fund the buys.
    """
    targets = target_weights(engine, plan)
    held = broker.get_positions()
    symbols = sorted(set(targets.index) | set(held))
    prices = last_closes(engine, calendar.previous_session(plan.session_date), symbols)
    missing = [s for s in symbols if s not in prices]
    if missing:
        raise RiskLimitBreached(f"no price for {missing[:5]}: cannot size orders")
    equity = broker.get_cash() + sum(float(q) * prices[s] for s, q in held.items())
    intents = [
        OrderIntent(
            client_order_id(plan.strategy, plan.session_date, plan.plan_version, symbol, side),
            symbol,
            side,
            Decimal(qty),
            plan.session_date,
        )
        for symbol, side, qty in size_orders(
            targets.to_dict(),
            {s: int(q) for s, q in held.items()},
            prices,
            equity,
            settings.min_order_notional,
        )
    ]
    return sorted(intents, key=lambda i: (i.side != "sell", i.symbol))


def size_orders(
    targets: dict[str, float],
    held: dict[str, int],
    prices: dict[str, float],
    equity: float,
    min_notional: float,
) -> list[tuple[str, Side, int]]:
    """``(symbol, side, shares)`` moving ``held`` to ``targets`` (weights of ``equity``, USD).

    No I/O: the live planner and the backtest both size orders here. Target shares are rounded
    down; orders under ``min_notional`` USD are dropped.
    """
    orders: list[tuple[str, Side, int]] = []
    for symbol in sorted(set(targets) | set(held)):
        target = math.floor(float(targets.get(symbol, 0.0)) * equity / prices[symbol])
        delta = target - int(held.get(symbol, 0))
        if delta == 0 or abs(delta) * prices[symbol] < min_notional:
            continue
        orders.append((symbol, "buy" if delta > 0 else "sell", abs(delta)))
    return orders


@dataclass(frozen=True)
class SubmitSummary:
    orders: int
    sent: int  # sent to the broker in this call
    recovered: int  # found at the broker already (a retry after a crash)


def submit_plan(
    engine: sa.Engine, settings: Settings, plan: PlanRef, broker: Broker, run_id: str
) -> SubmitSummary:
    """Send the approved plan's orders exactly once each."""
    assert_trading_allowed(engine)
    with stage_run(engine, run_id, "submit", plan=plan.__dict__) as run:
        status, model_name, model_version = _plan_row(engine, plan)
        if status not in ("approved", "submitted"):
            raise RiskLimitBreached(
                f"plan {plan} is {status!r}, not approved: the risk gate must pass first"
            )
        if status == "approved":
            _record_intents(
                engine,
                plan,
                plan_orders(engine, settings, plan, broker),
                broker.name,
                model_name,
                model_version,
            )
        sent = recovered = 0
        for coid, intent in _unsent(engine, plan):
            assert_trading_allowed(engine)
            known = broker.get_order_by_client_id(coid)
            if known is None:
                known = broker.submit_order(intent)
                sent += 1
            else:
                recovered += 1
            record_broker_state(engine, coid, known, source="broker")
        with engine.connect() as conn:
            total = conn.execute(
                sa.text(f"SELECT count(*) FROM orders WHERE {PlanRef.WHERE}"),
                plan.params(),
            ).scalar_one()
        run.summary = {"orders": total, "sent": sent, "recovered": recovered}
    return SubmitSummary(total, sent, recovered)


def _plan_row(engine: sa.Engine, plan: PlanRef) -> tuple[str, str, str]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(f"SELECT status, model_name, model_version FROM plans WHERE {PlanRef.WHERE}"),
            plan.params(),
        ).one_or_none()
    if row is None:
        raise RiskLimitBreached(f"plan {plan} does not exist")
    return row.status, row.model_name, row.model_version


def _record_intents(
    engine: sa.Engine,
    plan: PlanRef,
    intents: list[OrderIntent],
    broker: str,
    model_name: str,
    model_version: str,
) -> None:
    """Step 1: ledger rows for every intent, in one transaction, before any broker call.

    The plan becomes ``submitted`` in the same transaction: its intents are now frozen.
    """
    with engine.begin() as conn:
        for intent in intents:
            inserted = conn.execute(
                sa.text(
                    "INSERT INTO orders (client_order_id, strategy, session_date, "
                    "plan_version, symbol, side, qty, status, broker, model_name, "
                    "model_version) VALUES (:c, :s, :d, :v, :sym, :side, :q, 'planned', "
                    ":b, :m, :mv) ON CONFLICT (client_order_id) DO NOTHING"
                ),
                {
                    **plan.params(),
                    "c": intent.client_order_id,
                    "sym": intent.symbol,
                    "side": intent.side,
                    "q": intent.qty,
                    "b": broker,
                    "m": model_name,
                    "mv": model_version,
                },
            ).rowcount
            if inserted:
                _event(conn, intent.client_order_id, "planned", "ledger", None)
        conn.execute(
            sa.text(f"UPDATE plans SET status = 'submitted' WHERE {PlanRef.WHERE}"),
            plan.params(),
        )


def _unsent(engine: sa.Engine, plan: PlanRef) -> list[tuple[str, OrderIntent]]:
    """Ledger rows of the plan the broker has not confirmed yet (status ``planned``)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                f"SELECT client_order_id, symbol, side, qty FROM orders WHERE {PlanRef.WHERE} "
                "AND status = 'planned' ORDER BY side DESC, symbol"
            ),
            plan.params(),
        ).all()
    return [
        (
            r.client_order_id,
            OrderIntent(r.client_order_id, r.symbol, r.side, Decimal(r.qty), plan.session_date),
        )
        for r in rows
    ]


def record_broker_state(engine: sa.Engine, coid: str, order: BrokerOrder, source: str) -> bool:
    """Step 3: move the ledger to the broker's status; return whether it changed."""
    with engine.begin() as conn:
        changed = conn.execute(
            sa.text(
                "UPDATE orders SET status = :st, broker_order_id = :b, updated_at = now() "
                "WHERE client_order_id = :c AND status IS DISTINCT FROM :st"
            ),
            {"st": order.status, "b": order.broker_order_id, "c": coid},
        ).rowcount
        if changed:
            _event(
                conn,
                coid,
                order.status,
                source,
                {"broker_order_id": order.broker_order_id, "filled_qty": str(order.filled_qty)},
            )
    return bool(changed)


def _event(conn: sa.Connection, coid: str, status: str, source: str, detail: dict | None) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO order_events (client_order_id, status, source, detail) "
            "VALUES (:c, :st, :src, CAST(:d AS jsonb))"
        ),
        {"c": coid, "st": status, "src": source, "d": json.dumps(detail)},
    )
