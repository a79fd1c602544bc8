"""The ledger's set-based batch of broker reports (:func:`ledger.apply_broker_states`).

Against a real PostgreSQL: duplicates within a batch, out-of-order partial fills, late
updates to a terminal order, a bad report among good ones, two processors holding the same
batch, and the batch giving exactly what the reports applied one at a time give.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from pipelines.execution import ledger
from pipelines.execution.brokers.base import BrokerOrder
from tests.support.trading import DAY, make_plan

QTY = 800


def _orders(engine: sa.Engine, *coids: str, status: str = "accepted") -> None:
    make_plan(engine, {})
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO orders (client_order_id, strategy, session_date, plan_version, "
                "symbol, side, qty, status, broker, model_name, model_version) VALUES "
                "(:c, 'test', :d, 1, 'AAPL', 'buy', :q, :st, 'alpaca', 'm', '1')"
            ),
            [{"c": c, "d": DAY, "q": QTY, "st": status} for c in coids],
        )


def _report(
    coid: str, status: str, filled: int = 0, price: float | None = None, broker_id: str = "b-1"
) -> tuple[str, BrokerOrder]:
    order = BrokerOrder(
        broker_order_id=broker_id,
        client_order_id=coid,
        symbol="AAPL",
        side="buy",
        qty=Decimal(QTY),
        status=status,
        filled_qty=Decimal(filled),
        filled_avg_price=price if price is not None else (250.0 if filled else None),
        broker_status=status,
        updated_at=datetime(2010, 8, 16, 13, 30, tzinfo=UTC),
    )
    return coid, order


def _apply(
    engine: sa.Engine, reports: list[tuple[str, BrokerOrder]], source: str = "stream"
) -> ledger.BatchResult:
    with engine.begin() as conn:
        return ledger.apply_broker_states(conn, reports, source)


def _state(engine: sa.Engine, coid: str) -> tuple[str, Decimal, list[tuple], list[str]]:
    """(status, filled_qty, fills as (id, qty, price), event statuses in order)."""
    with engine.connect() as conn:
        status, filled = conn.execute(
            sa.text("SELECT status, filled_qty FROM orders WHERE client_order_id = :c"),
            {"c": coid},
        ).one()
        fills = conn.execute(
            sa.text(
                "SELECT fill_id, qty, price FROM fills WHERE client_order_id = :c ORDER BY fill_id"
            ),
            {"c": coid},
        ).all()
        events = conn.execute(
            sa.text("SELECT status FROM order_events WHERE client_order_id = :c ORDER BY id"),
            {"c": coid},
        ).scalars()
        return status, filled, [tuple(f) for f in fills], list(events)


def test_duplicates_within_a_batch_apply_once(warehouse: sa.Engine) -> None:
    _orders(warehouse, "c-dup")
    fill = _report("c-dup", "filled", QTY)
    result = _apply(warehouse, [fill, fill, fill])
    assert (result.applied, result.unchanged, result.refused) == (1, 2, ())
    assert _state(warehouse, "c-dup") == (
        "filled",
        QTY,
        [("c-dup-1", QTY, 250.0)],
        ["filled"],
    )
    again = _apply(warehouse, [fill])  # a redelivery in a later batch: nothing
    assert (again.applied, again.unchanged) == (0, 1)
    assert len(_state(warehouse, "c-dup")[3]) == 1


def test_out_of_order_partial_fills_never_move_money_back(warehouse: sa.Engine) -> None:
    _orders(warehouse, "c-ooo")
    result = _apply(
        warehouse,
        [
            _report("c-ooo", "partially_filled", 300, 250.0),
            _report("c-ooo", "partially_filled", 100, 240.0),  # older, delivered late
            _report("c-ooo", "partially_filled", 500, 254.0),  # 200 more at 260
            _report("c-ooo", "filled", QTY, 256.25),  # 300 more at 260
        ],
    )
    assert result.applied == 3 and result.unchanged == 0
    [late] = result.refused
    assert late.index == 1 and late.client_order_id == "c-ooo"
    assert "300 -> 100 would go back" in late.reason
    status, filled, fills, events = _state(warehouse, "c-ooo")
    assert (status, filled) == ("filled", QTY)
    assert [(f[0], f[1]) for f in fills] == [("c-ooo-1", 300), ("c-ooo-2", 200), ("c-ooo-3", 300)]
    assert [f[2] for f in fills] == pytest.approx([250.0, 260.0, 260.0])
    assert events == ["partially_filled", "partially_filled", "filled"]


def test_a_terminal_order_refuses_late_updates(warehouse: sa.Engine) -> None:
    _orders(warehouse, "c-term")
    _apply(warehouse, [_report("c-term", "filled", QTY)])
    result = _apply(
        warehouse,
        [
            _report("c-term", "accepted"),  # the "new" update, arriving after the fill
            _report("c-term", "partially_filled", 300),
            _report("c-term", "cancelled", QTY),
            _report("c-term", "filled", QTY),  # a redelivery of the fill: a no-op
        ],
    )
    assert result.applied == 0 and result.unchanged == 1
    assert [r.index for r in result.refused] == [0, 1, 2]
    assert "filled -> cancelled is not an allowed transition" in result.refused[2].reason
    assert _state(warehouse, "c-term") == ("filled", QTY, [("c-term-1", QTY, 250.0)], ["filled"])


def test_a_bad_report_does_not_lose_the_good_ones(warehouse: sa.Engine) -> None:
    _orders(warehouse, "c-good-1", "c-good-2", "c-nul")
    result = _apply(
        warehouse,
        [
            _report("c-good-1", "filled", QTY),
            _report("c-unknown", "filled", QTY),  # not in the ledger
            _report("c-good-2", "partially_filled", QTY + 1),  # more than ordered
            _report("c-good-2", "partially_filled", 300),
            # Passes the state machine, but the warehouse refuses the value (NUL in text):
            # only this order's report is refused, after the batch's write failed.
            _report("c-nul", "filled", QTY, broker_id="b\x00"),
        ],
    )
    reasons = {r.index: r.reason for r in result.refused}
    assert set(reasons) == {1, 2, 4}
    assert "c-unknown is not in the ledger" in reasons[1]
    assert "exceeds the 800 ordered" in reasons[2]
    assert "the warehouse refused it" in reasons[4]
    assert result.applied == 2
    assert _state(warehouse, "c-good-1")[:2] == ("filled", QTY)
    assert _state(warehouse, "c-good-2")[:2] == ("partially_filled", 300)
    assert _state(warehouse, "c-nul") == ("accepted", 0, [], [])


def test_one_report_raises_what_the_batch_refuses(warehouse: sa.Engine) -> None:
    _orders(warehouse, "c-one")
    fill, new = _report("c-one", "filled", QTY)[1], _report("c-one", "accepted")[1]
    with warehouse.begin() as conn:
        assert ledger.apply_broker_state(conn, "c-one", fill, "broker")
        assert not ledger.apply_broker_state(conn, "c-one", fill, "broker")  # nothing new
    with (
        pytest.raises(ledger.LedgerError, match="not an allowed transition"),
        warehouse.begin() as conn,
    ):
        ledger.apply_broker_state(conn, "c-one", new, "broker")
    with pytest.raises(ledger.LedgerError, match="not in the ledger"), warehouse.begin() as conn:
        ledger.apply_broker_state(conn, "c-none", fill, "broker")


def test_the_senders_late_answer_is_dropped_and_a_disagreement_raises(
    warehouse: sa.Engine,
) -> None:
    """``record_broker_states`` (the sender's answers, written once a side's sends end): the
    stream may record a fill first; the answer it then brings is stale, not an error. A
    report that contradicts the ledger raises, after the batch's other reports are written."""
    _orders(warehouse, "c-late", "c-sent", "c-gone", status="submitted")
    _apply(warehouse, [_report("c-late", "filled", QTY), _report("c-gone", "cancelled")])
    result = ledger.record_broker_states(
        warehouse, [_report("c-late", "accepted"), _report("c-sent", "accepted")], "broker"
    )
    assert result.applied == 1 and [r.stale for r in result.refused] == [True]
    assert _state(warehouse, "c-late")[:2] == ("filled", QTY)
    assert _state(warehouse, "c-sent")[:2] == ("accepted", 0)
    with pytest.raises(ledger.LedgerError, match="cancelled -> filled is not an allowed"):
        ledger.record_broker_states(
            warehouse,
            [_report("c-gone", "filled", QTY), _report("c-sent", "filled", QTY)],
            "broker",
        )
    assert _state(warehouse, "c-gone")[:2] == ("cancelled", 0)
    assert _state(warehouse, "c-sent")[:2] == ("filled", QTY)


def test_the_batch_equals_the_reports_applied_one_at_a_time(warehouse: sa.Engine) -> None:
    def script(coid: str) -> list[tuple[str, BrokerOrder]]:
        return [
            _report(coid, "accepted"),
            _report(coid, "partially_filled", 100, 250.0),
            _report(coid, "partially_filled", 100, 250.0),
            _report(coid, "accepted"),
            _report(coid, "partially_filled", 400, 251.0),
            _report(coid, "partially_filled", 300, 250.0),
            _report(coid, "filled", QTY, 252.0),
            _report(coid, "cancelled", QTY, 252.0),
        ]

    _orders(warehouse, "c-batch", "c-single", status="submitted")
    batch = _apply(warehouse, script("c-batch"))
    refused_single = []
    for i, (coid, order) in enumerate(script("c-single")):
        try:
            with warehouse.begin() as conn:
                ledger.apply_broker_state(conn, coid, order, "stream")
        except ledger.LedgerError:
            refused_single.append(i)
    assert [r.index for r in batch.refused] == refused_single == [3, 5, 7]
    b, s = _state(warehouse, "c-batch"), _state(warehouse, "c-single")
    assert b[:2] == s[:2] == ("filled", QTY)
    assert [f[1:] for f in b[2]] == [f[1:] for f in s[2]]
    assert b[3] == s[3] == ["accepted", "partially_filled", "partially_filled", "filled"]


def _waiting_for_a_lock(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )


def test_two_processors_on_the_same_batch_apply_it_once(warehouse: sa.Engine) -> None:
    coids = [f"c-race-{i}" for i in range(20)]
    _orders(warehouse, *coids)
    batch = [_report(c, "partially_filled", 300) for c in coids]
    batch += [_report(c, "filled", QTY) for c in reversed(coids)]  # locks taken in id order
    second: list[ledger.BatchResult] = []
    with warehouse.begin() as conn:  # the first processor holds the batch's rows...
        first = ledger.apply_broker_states(conn, batch, "stream")
        other = threading.Thread(target=lambda: second.append(_apply(warehouse, batch)))
        other.start()  # ...the second, given the same entries (a reclaim), waits for them
        deadline = time.monotonic() + 30
        while not _waiting_for_a_lock(warehouse):
            assert time.monotonic() < deadline, "the second processor never waited"
            time.sleep(0.02)
    other.join(30)
    assert (first.applied, first.refused) == (40, ())
    [again] = second
    # The second saw what the first committed: its fills are redeliveries (no-ops) and its
    # partial fills older than the ledger (refused); it wrote nothing.
    assert (again.applied, again.unchanged, len(again.refused)) == (0, 20, 20)
    with warehouse.connect() as conn:
        fills, events = conn.execute(
            sa.text("SELECT (SELECT count(*) FROM fills), (SELECT count(*) FROM order_events)")
        ).one()
    assert (fills, events) == (40, 40)
