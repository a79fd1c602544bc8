"""The Store's reads and statements for the plan lock, plan status moves, the cockpit, the demo
summary and the news universe, on the real schema."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pandas as pd
import sqlalchemy as sa

from pipelines.warehouse import (
    accounts,
    bars,
    counts,
    locks,
    migrate,
    orders,
    plans,
    prices,
    universe,
)
from pipelines.warehouse.plans import PlanRef

DAY = date(2010, 8, 16)
PLAN = PlanRef("s", DAY, 1)


def test_a_session_lock_is_held_by_one_connection_until_it_unlocks(warehouse) -> None:
    with warehouse.connect() as holder, warehouse.connect() as other:
        assert locks.try_lock(holder, 7, "s|2010-08-16")
        assert not locks.try_lock(other, 7, "s|2010-08-16")
        assert locks.try_lock(other, 7, "s|2010-08-17")  # another key
        locks.unlock(holder, 7, "s|2010-08-16")
        assert locks.try_lock(other, 7, "s|2010-08-16")
        locks.unlock(other, 7, "s|2010-08-16")
        locks.unlock(other, 7, "s|2010-08-17")


def test_a_status_move_applies_only_from_an_expected_status(warehouse) -> None:
    with warehouse.begin() as conn:
        plans.insert(conn, PLAN, pd.Series({"MSFT": 0.5}), "m", "1", "run-1")
        assert not plans.move_status(conn, PLAN, ["approved"], "submitted", {})
        assert plans.status(conn, PLAN) == "proposed"
        assert plans.move_status(conn, PLAN, ["blocked", "proposed"], "approved", {})
        assert plans.status(conn, PLAN) == "approved"
        assert plans.status(conn, PlanRef("s", DAY, 2)) is None


def _ledger(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        plans.insert(conn, PLAN, pd.Series({"MSFT": 0.5}), "m", "1", "run-1")
        for coid, symbol, side, status, broker in [
            ("c-1", "MSFT", "buy", "filled", "sim"),
            ("c-2", "AAPL", "sell", "planned", "sim"),
            ("c-3", "AAPL", "buy", "filled", "alpaca"),
        ]:
            conn.execute(
                sa.text(
                    "INSERT INTO orders (client_order_id, strategy, session_date, plan_version, "
                    "symbol, side, qty, status, broker, model_name, model_version) VALUES (:c, "
                    "'s', :d, 1, :sym, :side, 2, :st, :b, 'm', '1')"
                ),
                {"c": coid, "d": DAY, "sym": symbol, "side": side, "st": status, "b": broker},
            )
        conn.execute(
            sa.text(
                "INSERT INTO positions (broker, symbol, qty, avg_price) VALUES "
                "('sim', 'MSFT', 2, 10.5), ('sim', 'IBM', 0, 3), ('alpaca', 'AAPL', 1, 7)"
            )
        )


def test_the_cockpit_reads_a_sessions_orders_and_the_held_positions(warehouse) -> None:
    _ledger(warehouse)
    with warehouse.connect() as conn:
        session = orders.of_session(conn, "s", DAY)
        held = accounts.held(conn, "sim")
        assert orders.of_session(conn, "s", date(2010, 8, 17)) == []
        book = accounts.positions_frame(conn)
    assert [(r.symbol, r.side, r.client_order_id) for r in session] == [
        ("AAPL", "buy", "c-3"), ("AAPL", "sell", "c-2"), ("MSFT", "buy", "c-1")
    ]  # fmt: skip
    assert [tuple(r) for r in held] == [("MSFT", Decimal(2), 10.5)]  # a flat symbol is left out
    assert book.to_dict("list") == {"symbol": ["AAPL", "IBM", "MSFT"], "qty": [1.0, 0.0, 2.0]}


def test_the_demo_counts_rows_and_orders_by_status_and_broker(warehouse) -> None:
    _ledger(warehouse)
    with warehouse.connect() as conn:
        assert counts.row_counts(conn, ("orders", "fills")) == {"orders": 3, "fills": 0}
        by_status = sorted(tuple(r) for r in orders.orders_by_status(conn))
    assert by_status == [("filled", "alpaca", 1), ("filled", "sim", 1), ("planned", "sim", 1)]


def test_symbols_of_the_universe_and_of_bars_and_the_newest_close(warehouse) -> None:
    with warehouse.begin() as conn:
        assert universe.all_members(conn) == []
        assert bars.newest_close_day(conn) is None
        conn.execute(
            sa.text(
                "INSERT INTO universe (symbol, valid_from, valid_to, source) VALUES "
                "('MSFT', '2010-01-04', '2010-03-01', 't'), ('MSFT', '2010-06-01', NULL, 't'), "
                "('AAPL', '2010-01-04', NULL, 't')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO bars (symbol, ts, session_date, open, high, low, close, volume, "
                "source) VALUES (:s, :ts, :d, 1, 1, 1, 1, 1, 't')"
            ),
            [
                {"s": "IBM", "ts": datetime(2010, 8, 16, 20, tzinfo=UTC), "d": DAY},
                {"s": "AAPL", "ts": datetime(2010, 8, 13, 20, tzinfo=UTC), "d": date(2010, 8, 13)},
            ],
        )
        assert universe.all_members(conn) == ["AAPL", "MSFT"]
        assert bars.stored_symbols(conn) == ["AAPL", "IBM"]
        assert bars.latest_session(conn) == DAY


def test_the_recorded_migrations_are_the_discovered_ones(warehouse) -> None:
    with warehouse.connect() as conn:
        recorded = migrate.recorded(conn)
    assert recorded == {m.version: m.checksum for m in migrate.discover()}


def test_the_last_close_is_as_of_s_own_or_the_newest_before_it(warehouse) -> None:
    bars_by_symbol = {  # close by session: IBM trades on DAY, AAPL is stale, XOM only after
        "IBM": {date(2010, 8, 13): 10.0, DAY: 11.0, date(2010, 8, 17): 12.0},
        "AAPL": {date(2010, 8, 11): 20.0, date(2010, 8, 12): 21.0, date(2010, 8, 17): 22.0},
        "XOM": {date(2010, 8, 17): 30.0},
    }
    with warehouse.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO bars (symbol, ts, session_date, open, high, low, close, volume, "
                "source) VALUES (:s, :ts, :d, 1, 1, 1, :c, 1, 't')"
            ),
            [
                {"s": s, "ts": datetime(d.year, d.month, d.day, 20, tzinfo=UTC), "d": d, "c": c}
                for s, closes in bars_by_symbol.items()
                for d, c in closes.items()
            ],
        )
    got = prices.last_closes(warehouse, DAY, ["IBM", "AAPL", "XOM", "MSFT", "AAPL"])
    assert got == {"IBM": 11.0, "AAPL": 21.0}


def test_frozen_closes_are_the_panels_the_query_returns(warehouse) -> None:
    """A backtest's replay cuts the trailing closes from one panel read at its start: the same
    frames as the query, gaps, absent symbols and windows without bars included."""
    days = [date(2010, 8, d) for d in (9, 10, 11, 12, 13, 16, 17)]
    rows = [
        {"s": s, "ts": datetime(d.year, d.month, d.day, 20, tzinfo=UTC), "d": d, "c": 10 + i + j}
        for i, s in enumerate(["AAPL", "IBM", "MSFT"])
        for j, d in enumerate(days)
        if not (s == "IBM" and d in days[2:4]) and not (s == "MSFT" and d >= days[2])
    ]
    with warehouse.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO bars (symbol, ts, session_date, open, high, low, close, volume, "
                "source) VALUES (:s, :ts, :d, 1, 1, 1, :c, 1, 't')"
            ),
            rows,
        )
    asks = [
        (days[0], days[-1], ["MSFT", "AAPL", "IBM", "XOM"]),
        (days[2], days[4], ["IBM", "MSFT"]),  # MSFT has no close there: no column
        (days[2], days[3], ["IBM"]),  # no close at all
        (date(2010, 8, 14), date(2010, 8, 15), ["AAPL"]),  # a weekend
    ]
    queried = [bars.read_closes(warehouse, *ask) for ask in asks]
    with bars.frozen_closes(warehouse):
        cut = [bars.read_closes(warehouse, *ask) for ask in asks]
    assert bars.read_closes(warehouse, *asks[0]).equals(queried[0])  # the query again after
    for got, expected in zip(cut, queried, strict=True):
        pd.testing.assert_frame_equal(
            got, expected, check_index_type=False, check_column_type=False
        )
        assert list(got.columns) == list(expected.columns)
    assert list(queried[1].columns) == ["IBM"] and queried[2].empty
