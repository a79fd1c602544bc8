"""The order ledger's repositories on the real schema: orders and their events, the orders
frozen with a plan, dead letters, reconciliations and a broker account's initial cash."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pandas as pd
import sqlalchemy as sa

from pipelines.warehouse import accounts, orders, plans, reconciliations
from pipelines.warehouse.plans import PlanRef

PLAN = PlanRef("s", date(2010, 8, 16), 1)


@dataclass(frozen=True)
class _Line:
    client_order_id: str
    symbol: str
    side: str
    qty: Decimal


BUY, SELL = _Line("c-buy", "MSFT", "buy", Decimal(3)), _Line("c-sell", "AAPL", "sell", Decimal(2))


def _plan_with_orders(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        plans.insert(conn, PLAN, pd.Series({"MSFT": 0.5}), "m", "1", "run-1")
        assert orders.insert(conn, PLAN, [BUY, SELL], "planned", "ledger", ("sim", "m", "1")) == 2
        held_already = orders.insert(conn, PLAN, [BUY], "planned", "ledger", ("sim", "m", "1"))
        assert held_already == 0


def test_orders_are_written_once_read_by_status_and_moved_with_their_event(warehouse) -> None:
    _plan_with_orders(warehouse)
    assert orders.count(warehouse, PLAN) == 2
    unsent = orders.with_status(warehouse, PLAN, ["planned", "submitted"])
    assert [r.client_order_id for r in unsent] == ["c-sell", "c-buy"]  # sells first
    with warehouse.begin() as conn:
        assert orders.locked_status(conn, "c-buy") == "planned"
        assert orders.locked_status(conn, "nope") is None
        orders.update(conn, "c-buy", "submitted", {"attempts": 1}, ("ledger", {"attempt": 1}))
    assert [r.client_order_id for r in orders.with_status(warehouse, PLAN, ["planned"])] == [
        "c-sell"
    ]
    with warehouse.connect() as conn:
        events = conn.execute(
            sa.text("SELECT status, source FROM order_events WHERE client_order_id = 'c-buy' "
                    "ORDER BY id")
        ).all()  # fmt: skip
    assert [tuple(e) for e in events] == [("planned", "ledger"), ("submitted", "ledger")]
    assert orders.read(warehouse, "c-buy").broker == "sim"


def test_frozen_orders_are_replaced_and_the_plan_stamped(warehouse) -> None:
    with warehouse.begin() as conn:
        plans.insert(conn, PLAN, pd.Series({"MSFT": 0.5}), "m", "1", "run-1")
    assert plans.for_submission(warehouse, PLAN).orders_frozen_at is None
    for lines in ([BUY, SELL], [BUY]):
        with warehouse.begin() as conn:
            orders.replace_frozen(conn, PLAN, lines)
            plans.mark_orders_frozen(conn, PLAN)
    assert [r.client_order_id for r in orders.frozen(warehouse, PLAN)] == ["c-buy"]
    assert plans.for_submission(warehouse, PLAN).orders_frozen_at is not None
    assert plans.for_submission(warehouse, PlanRef("s", PLAN.session_date, 9)) is None


def test_a_dead_letter_adds_its_attempts_and_resolves_after_a_successful_retry(warehouse) -> None:
    _plan_with_orders(warehouse)
    assert orders.dead_letter_status(warehouse, "c-buy") is None
    for attempts in (2, 3):
        with warehouse.begin() as conn:
            orders.upsert_dead_letter(conn, "c-buy", "sim", 403, 40310000, "no money", attempts)
            orders.update(conn, "c-buy", "dead_letter", {})
    (letter,) = orders.dead_letters(warehouse, include_resolved=False)
    assert (letter.attempts, letter.qty, letter.status) == (5, "3", "dead_letter")
    orders.mark_retried(warehouse, "c-buy", "dead_letter")
    assert len(orders.dead_letters(warehouse, include_resolved=False)) == 1  # still refused
    with warehouse.begin() as conn:
        orders.update(conn, "c-buy", "accepted", {})
    orders.mark_retried(warehouse, "c-buy", "dead_letter")
    assert orders.dead_letters(warehouse, include_resolved=False) == []
    assert orders.dead_letter_status(warehouse, "c-buy") == "accepted"


def test_the_latest_reconciliation_and_the_last_clean_listing(warehouse) -> None:
    assert reconciliations.latest(warehouse, "sim") is None
    assert reconciliations.last_clean_listing(warehouse, "sim") is None
    clean = datetime(2010, 8, 16, 14, tzinfo=UTC)
    reconciliations.insert(warehouse, "sim", "run-1", 2, 1, [], clean)
    reconciliations.insert(warehouse, "sim", "run-2", 2, 0, ["c-buy differs"], datetime.now(UTC))
    latest = reconciliations.latest(warehouse, "sim")
    assert (latest.ok, latest.problems) == (False, ["c-buy differs"])
    assert reconciliations.last_clean_listing(warehouse, "sim") == clean
    assert reconciliations.latest(warehouse, "other") is None


def test_initial_cash_is_none_without_an_account(warehouse) -> None:
    assert accounts.initial_cash(warehouse, "sim") is None
    with warehouse.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO broker_accounts (broker, initial_cash, cash) "
                    "VALUES ('sim', 100000, 90000)")
        )  # fmt: skip
    assert accounts.initial_cash(warehouse, "sim") == 100000.0


def test_a_fill_belongs_to_its_new_york_session_across_a_clock_change(warehouse) -> None:
    """The fill reads bound ``filled_at`` by a session's New York midnight: 2010-11-07 is the
    day daylight saving ended, so its first midnight is 04:00 UTC and its last 05:00 UTC."""
    _plan_with_orders(warehouse)
    fills = [  # (fill, its UTC time, its New York session)
        ("f-1", datetime(2010, 11, 7, 3, 59, tzinfo=UTC), date(2010, 11, 6)),
        ("f-2", datetime(2010, 11, 7, 4, 0, tzinfo=UTC), date(2010, 11, 7)),
        ("f-3", datetime(2010, 11, 8, 4, 30, tzinfo=UTC), date(2010, 11, 7)),  # 23:30 EST
        ("f-4", datetime(2010, 11, 8, 5, 0, tzinfo=UTC), date(2010, 11, 8)),
    ]
    with warehouse.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO fills (fill_id, client_order_id, symbol, side, qty, price, "
                "filled_at) VALUES (:f, 'c-buy', 'MSFT', 'buy', 1, 100, :at)"
            ),
            [{"f": f, "at": at} for f, at, _ in fills],
        )
    with warehouse.connect() as conn:
        for day in (date(2010, 11, 5), date(2010, 11, 6), date(2010, 11, 7), date(2010, 11, 8)):
            through = sum(session <= day for _, _, session in fills)
            assert orders.fill_flows(conn, day)["fills"].sum() == through, day
            held = orders.holdings_through(conn, day)
            assert held.get("MSFT", 0.0) == through, day
            assert orders.filled_symbols(conn, day) == (["MSFT"] if through else []), day
        between = orders.fills_between(conn, date(2010, 11, 6), date(2010, 11, 7))
        assert sorted(between["session_date"]) == [date(2010, 11, 7)] * 2
        assert len(orders.fills_between(conn, None, date(2010, 11, 6))) == 1
