"""The Alpaca adapter through alpaca-py against the local Alpaca server, and the ledger with it."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
import requests
import sqlalchemy as sa
from pydantic import SecretStr

from pipelines.errors import ConfigurationError, ReconciliationError
from pipelines.execution import ledger as ledger_states
from pipelines.execution.brokers import get_broker
from pipelines.execution.brokers.alpaca import STATUS_MAP, AlpacaBroker, map_status
from pipelines.execution.brokers.base import (
    OrderIntent,
    PermanentBrokerError,
    TransientBrokerError,
)
from pipelines.execution.dead_letter import list_dead_letters
from pipelines.execution.orders import (
    DEAD_LETTERED,
    RECOVERED,
    SENT,
    retry_dead_letter,
    send_order,
    submit_plan,
)
from pipelines.execution.reconcile import reconcile
from tests.support.alpaca_trading_server import Fault
from tests.support.trading import DAY, alpaca_settings, ledger, make_plan

WEIGHTS = {"AAPL": 0.2, "MSFT": 0.1, "XOM": 0.15}


def _intent(coid: str, symbol: str = "AAPL", side: str = "buy", qty: int = 10) -> OrderIntent:
    return OrderIntent(coid, symbol, side, Decimal(qty), DAY)  # type: ignore[arg-type]


def _insert_order(engine: sa.Engine, intent: OrderIntent, strategy: str = "test") -> None:
    """A planned ledger row for ``intent`` under an existing plan of ``strategy``."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO orders (client_order_id, strategy, session_date, plan_version, "
                "symbol, side, qty, status, broker, model_name, model_version) VALUES "
                "(:c, :s, :d, 1, :sym, :side, :q, 'planned', 'alpaca', 'm', '1')"
            ),
            {
                "c": intent.client_order_id,
                "s": strategy,
                "d": intent.session_date,
                "sym": intent.symbol,
                "side": intent.side,
                "q": intent.qty,
            },
        )


def test_submit_fill_and_reconcile_through_alpaca_py(warehouse, alpaca_server) -> None:
    settings = alpaca_settings(alpaca_server)
    broker = get_broker(settings, warehouse)
    assert isinstance(broker, AlpacaBroker) and broker.paper
    plan = make_plan(warehouse, WEIGHTS)
    summary = submit_plan(warehouse, settings, plan, broker, "run-1")
    rows = ledger(warehouse, plan)
    # 1,000,000 USD of equity: floor(w * equity / price) shares each.
    expected = {"AAPL": 800, "MSFT": 4000, "XOM": 2500}
    assert {r.symbol: int(r.qty) for r in rows.values()} == expected
    assert summary.orders == summary.sent == 3 and summary.recovered == 0
    for coid, row in rows.items():
        at_broker = alpaca_server.order_by_client_id(coid)
        assert at_broker is not None and at_broker["id"] == row.broker_order_id
        assert row.status == "accepted" and at_broker["time_in_force"] == "opg"

    reconcile(warehouse, broker, settings, "run-1")
    aapl = next(c for c, r in rows.items() if r.symbol == "AAPL")
    alpaca_server.fill(aapl, qty=300, price=249.0)
    alpaca_server.fill(aapl, qty=200, price=251.5)
    report = reconcile(warehouse, broker, settings, "run-1")
    assert report.orders_updated == 1 and report.open_orders == 3
    with warehouse.connect() as conn:
        fills = conn.execute(
            sa.text("SELECT qty, price FROM fills WHERE client_order_id = :c ORDER BY fill_id"),
            {"c": aapl},
        ).all()
        status, filled = conn.execute(
            sa.text("SELECT status, filled_qty FROM orders WHERE client_order_id = :c"), {"c": aapl}
        ).one()
    # Both partial fills arrived before the read: one fill row at their average price.
    assert status == "partially_filled" and filled == 500
    average = (300 * 249 + 200 * 251.5) / 500
    assert [(int(q), p) for q, p in fills] == [(500, pytest.approx(average))]
    alpaca_server.fill()
    reconcile(warehouse, broker, settings, "run-1")
    assert {r.status for r in ledger(warehouse, plan).values()} == {"filled"}
    assert broker.get_positions() == {s: Decimal(q) for s, q in expected.items()}
    with warehouse.connect() as conn:
        events = conn.execute(
            sa.text(
                "SELECT status, source FROM order_events WHERE client_order_id = :c ORDER BY id"
            ),
            {"c": aapl},
        ).all()
        net = dict(
            conn.execute(sa.text("SELECT symbol, sum(qty) FROM fills GROUP BY symbol")).all()
        )
    assert [tuple(e) for e in events] == [
        ("planned", "ledger"),
        ("submitted", "ledger"),
        ("accepted", "broker"),
        ("partially_filled", "reconcile"),
        ("filled", "reconcile"),
    ]
    assert {s: int(q) for s, q in net.items()} == expected

    # A rerun of the same plan sends nothing.
    again = submit_plan(warehouse, settings, plan, broker, "run-2")
    assert again.sent == 0 and len(alpaca_server.orders()) == 3


def test_a_504_after_the_order_was_stored_is_read_as_already_submitted(
    warehouse, alpaca_server
) -> None:
    # alpaca-py's own retry (kept on here) gets 422 40010001: the adapter looks the order up.
    settings = alpaca_settings(alpaca_server, alpaca_sdk_retry_attempts=2)
    broker = AlpacaBroker(settings)
    alpaca_server.inject(Fault(504, store=True))
    order = broker.submit_order(_intent("c-504"))
    assert order.client_order_id == "c-504" and order.status == "accepted"
    assert alpaca_server.requests == [
        ("POST", "/v2/orders", 504),
        ("POST", "/v2/orders", 422),
        ("GET", "/v2/orders:by_client_order_id", 200),
    ]
    assert alpaca_server.created["c-504"] == 1


def test_without_sdk_retries_the_ledger_retry_asks_first(warehouse, alpaca_server) -> None:
    settings = alpaca_settings(alpaca_server)
    make_plan(warehouse, {})
    _insert_order(warehouse, intent := _intent("c-ask"))
    alpaca_server.inject(Fault(504, store=True))
    assert send_order(warehouse, settings, AlpacaBroker(settings), intent) == SENT
    # POST (stored, 504) -> ask by id (found): never a second POST.
    assert [r[:2] for r in alpaca_server.requests].count(("POST", "/v2/orders")) == 1
    assert alpaca_server.created["c-ask"] == 1
    assert ledger(warehouse)["c-ask"].status == "accepted"


def test_timeouts_are_transient_and_never_duplicate(warehouse, alpaca_server) -> None:
    settings = alpaca_settings(alpaca_server, alpaca_timeout_seconds=0.2)
    broker = AlpacaBroker(settings)
    alpaca_server.inject(Fault(delay=0.6))  # slow, nothing stored before the timeout
    with pytest.raises(TransientBrokerError, match="Timeout"):
        broker.submit_order(_intent("c-slow"))
    make_plan(warehouse, {})
    for coid in ("c-t1", "c-t2"):
        _insert_order(warehouse, _intent(coid))
    # Stored, then the answer is too slow: the retry finds it; not stored: the retry sends it.
    alpaca_server.inject(
        Fault(store=True, delay=0.6, client_order_id="c-t1"),
        Fault(delay=0.6, client_order_id="c-t2"),
    )
    assert send_order(warehouse, settings, broker, _intent("c-t1")) == SENT
    assert send_order(warehouse, settings, broker, _intent("c-t2")) == SENT
    assert alpaca_server.created["c-t1"] == 1
    # c-t2's slow request is still served after the client gave up: Alpaca keeps the first
    # one it stores and answers the other 422 40010001 — one order either way.
    assert alpaca_server.created["c-t2"] == 1
    assert {ledger(warehouse)[c].status for c in ("c-t1", "c-t2")} == {"accepted"}


def test_429_retries_are_bounded_and_resume_on_rerun(warehouse, alpaca_server) -> None:
    settings = alpaca_settings(alpaca_server, broker_max_attempts=3)
    broker = AlpacaBroker(settings)
    make_plan(warehouse, {})
    _insert_order(warehouse, intent := _intent("c-429"))
    alpaca_server.inject(*[Fault(429) for _ in range(5)])
    with pytest.raises(TransientBrokerError, match="failed 3 times"):
        send_order(warehouse, settings, broker, intent)
    posts = [r for r in alpaca_server.requests if r[0] == "POST"]
    assert posts == [("POST", "/v2/orders", 429)] * 3
    row = ledger(warehouse)["c-429"]
    assert row.status == "submitted" and row.attempts == 3 and "429" in row.last_error
    alpaca_server.clear_faults()
    assert send_order(warehouse, settings, broker, intent) == SENT
    assert alpaca_server.created["c-429"] == 1


def test_rate_limit_answers_carry_alpaca_headers(alpaca_server) -> None:
    alpaca_server.rate_limit = 2
    headers = {"APCA-API-KEY-ID": "test-key", "APCA-API-SECRET-KEY": "test-secret"}
    answers = [
        requests.get(f"{alpaca_server.url}/v2/account", headers=headers, timeout=5)
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["code"] == 42910000
    assert answers[2].headers["X-RateLimit-Limit"] == "2"
    assert answers[2].headers["X-RateLimit-Remaining"] == "0"
    assert int(answers[2].headers["X-RateLimit-Reset"]) > 0
    unauthorized = requests.get(f"{alpaca_server.url}/v2/account", timeout=5)
    assert unauthorized.status_code in (401, 429)


def test_permanent_refusals_go_to_dead_letter_and_retry_is_exactly_once(
    warehouse, alpaca_server
) -> None:
    settings = alpaca_settings(alpaca_server)
    broker = AlpacaBroker(settings)
    make_plan(warehouse, {})
    too_big = _intent("c-403", "AAPL", qty=10_000)  # 2.5M USD against 1M of buying power
    unknown = _intent("c-422", "NOPE", qty=1)
    for intent in (too_big, unknown):
        _insert_order(warehouse, intent)
        assert send_order(warehouse, settings, broker, intent) == DEAD_LETTERED
    letters = {d.client_order_id: d for d in list_dead_letters(warehouse)}
    assert letters["c-403"].http_status == 403 and letters["c-403"].error_code == 40310000
    assert "insufficient buying power" in letters["c-403"].error
    assert letters["c-422"].http_status == 422 and letters["c-422"].error_code == 42210000
    assert {d.status for d in letters.values()} == {"dead_letter"}
    assert alpaca_server.orders() == []

    # Still too big: refused again, still a dead letter, attempts add up.
    assert retry_dead_letter(warehouse, settings, broker, "c-403") == DEAD_LETTERED
    assert list_dead_letters(warehouse)[-1].attempts == 2
    # The broker stored it although it answered 403 (the retry must find it, not resend).
    alpaca_server.set_price("AAPL", 50.0)
    alpaca_server.inject(Fault(403, store=True))
    assert retry_dead_letter(warehouse, settings, broker, "c-403") == DEAD_LETTERED
    assert alpaca_server.created["c-403"] == 1
    assert retry_dead_letter(warehouse, settings, broker, "c-403") == RECOVERED
    assert alpaca_server.created["c-403"] == 1
    assert ledger(warehouse)["c-403"].status == "accepted"
    assert [d.client_order_id for d in list_dead_letters(warehouse)] == ["c-422"]
    resolved = list_dead_letters(warehouse, include_resolved=True)
    assert {d.client_order_id: d.resolved for d in resolved} == {"c-403": True, "c-422": False}


def test_reconciliation_blocks_trading_until_resolved(warehouse, alpaca_server) -> None:
    settings = alpaca_settings(alpaca_server)
    broker = AlpacaBroker(settings)
    plan = make_plan(warehouse, WEIGHTS)
    # An order placed at the broker behind the ledger's back.
    stray = broker.submit_order(_intent("manual-1", "KO", qty=5))
    with pytest.raises(ReconciliationError, match="manual-1 .* not in the ledger"):
        reconcile(warehouse, broker, settings, "run-1")
    with pytest.raises(ReconciliationError, match="blocked until"):
        submit_plan(warehouse, settings, plan, broker, "run-1")
    assert len(alpaca_server.orders()) == 1
    with warehouse.connect() as conn:
        ok, problems = conn.execute(
            sa.text("SELECT ok, problems FROM reconciliations ORDER BY id DESC LIMIT 1")
        ).one()
    assert ok is False and "manual-1" in problems[0]

    # A person resolves it (here: the stray order is cancelled and never filled; Alpaca keeps
    # it, so it stays a difference) — a position the fills do not explain is one too.
    alpaca_server.reset()
    alpaca_server.set_price("KO", 55.0)
    assert stray.client_order_id not in {o["client_order_id"] for o in alpaca_server.orders()}
    reconcile(warehouse, broker, settings, "run-1")
    summary = submit_plan(warehouse, settings, plan, broker, "run-1")
    assert summary.sent == 3
    alpaca_server.fill()
    reconcile(warehouse, broker, settings, "run-1")
    some = next(iter(ledger(warehouse, plan)))
    with warehouse.begin() as conn:  # the ledger loses a fill: positions no longer agree
        conn.execute(sa.text("DELETE FROM fills WHERE client_order_id = :c"), {"c": some})
    with pytest.raises(ReconciliationError, match="ledger fills say"):
        reconcile(warehouse, broker, settings, "run-1")


def test_alpaca_statuses_map_onto_the_ledger(warehouse, alpaca_server) -> None:
    assert set(STATUS_MAP.values()) <= ledger_states.STATUSES
    assert map_status("new") == "accepted" and map_status("canceled") == "cancelled"
    settings = alpaca_settings(alpaca_server)
    broker = AlpacaBroker(settings)
    make_plan(warehouse, {})
    for coid, status in (("c-exp", "expired"), ("c-can", "canceled"), ("c-rej", "rejected")):
        _insert_order(warehouse, _intent(coid))
        send_order(warehouse, settings, broker, _intent(coid))
        alpaca_server.set_status(coid, status)
    reconcile(warehouse, broker, settings)
    rows = ledger(warehouse)
    assert {c: rows[c].status for c in rows} == {
        "c-exp": "expired",
        "c-can": "cancelled",
        "c-rej": "rejected",
    }


def test_the_ledger_refuses_forbidden_transitions(warehouse) -> None:
    make_plan(warehouse, {})
    _insert_order(warehouse, _intent("c-sm"))
    with warehouse.begin() as conn:
        assert ledger_states.transition(conn, "c-sm", "submitted", "ledger")
        assert ledger_states.transition(conn, "c-sm", "filled", "broker")
    for bad in ("accepted", "planned", "partially_filled", "dead_letter"):
        with (
            pytest.raises(ledger_states.LedgerError, match="not an allowed transition"),
            warehouse.begin() as conn,
        ):
            ledger_states.transition(conn, "c-sm", bad, "broker")
    assert ledger(warehouse)["c-sm"].status == "filled"
    assert all(not ledger_states.TRANSITIONS[s] for s in ledger_states.TERMINAL)
    # The column refuses unknown states too.
    with pytest.raises(sa.exc.IntegrityError), warehouse.begin() as conn:
        conn.execute(sa.text("UPDATE orders SET status = 'lost'"))


def test_live_needs_confirmation_and_secrets_stay_out_of_logs(
    alpaca_server, caplog: pytest.LogCaptureFixture
) -> None:
    settings = alpaca_settings(alpaca_server)
    with pytest.raises(ConfigurationError, match="ALPACA_API_KEY"):
        AlpacaBroker(settings.model_copy(update={"alpaca_api_key": SecretStr("")}))
    with pytest.raises(ConfigurationError, match="LIVE_TRADING_CONFIRMED"):
        AlpacaBroker(settings.model_copy(update={"trading_mode": "live"}))
    live = AlpacaBroker(
        settings.model_copy(
            update={"trading_mode": "live", "live_trading_confirmed": True, "alpaca_base_url": ""}
        )
    )
    assert not live.paper and live._client._base_url == "https://api.alpaca.markets"
    paper = AlpacaBroker(settings.model_copy(update={"alpaca_base_url": ""}))
    assert paper.paper and paper._client._base_url == "https://paper-api.alpaca.markets"
    wrong = settings.model_copy(update={"alpaca_secret_key": SecretStr("s3cr3t-value")})
    caplog.set_level(logging.DEBUG)
    with pytest.raises(Exception) as failure:
        AlpacaBroker(wrong).get_cash()
    assert "401" in str(failure.value) and "ALPACA_SECRET_KEY" in str(failure.value)
    assert "s3cr3t-value" not in caplog.text and "s3cr3t-value" not in str(failure.value)
    assert "s3cr3t-value" not in repr(wrong)


def test_permanent_and_transient_are_told_apart(alpaca_server) -> None:
    broker = AlpacaBroker(alpaca_settings(alpaca_server, broker_max_attempts=2))
    alpaca_server.inject(Fault(500), Fault(503))
    with pytest.raises(TransientBrokerError, match="500"):
        broker.submit_order(_intent("c-500"))
    with pytest.raises(TransientBrokerError, match="503"):
        broker.submit_order(_intent("c-503"))
    # 422 40010001 is also Alpaca's code for bad parameters: only a lookup tells them apart.
    alpaca_server.inject(Fault(422, body={"code": 40010001, "message": "qty must be > 0"}))
    with pytest.raises(PermanentBrokerError, match="qty must be > 0") as refused:
        broker.submit_order(_intent("c-qty"))
    assert refused.value.http_status == 422 and refused.value.code == 40010001
    assert alpaca_server.requests[-1] == ("GET", "/v2/orders:by_client_order_id", 404)
    # Reads are retried here: two 500s on a lookup, then the answer.
    alpaca_server.inject(Fault(500, method="GET", path="/v2/account"))
    assert broker.get_cash() == 1_000_000.0
