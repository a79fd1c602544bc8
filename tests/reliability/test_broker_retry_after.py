"""The broker path honours a 429's Retry-After within BROKER_MAX_WAIT_SECONDS, and sizes
orders on one consistent account snapshot: the real AlpacaBroker (alpaca-py) against the local
Alpaca trading server answering 429 with Retry-After, or filling an order mid-read."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from pipelines.execution.backoff import BrokerBackoff, parse_retry_after
from pipelines.execution.brokers.alpaca import AlpacaBroker
from pipelines.execution.brokers.base import OrderIntent, TransientBrokerError
from pipelines.execution.brokers.simulated import SimulatedBroker
from pipelines.execution.orders import SENT, send_order
from tests.support.alpaca_trading_server import AlpacaTradingServer, Fault
from tests.support.trading import DAY, PRICES, alpaca_settings, make_plan


@pytest.fixture
def server() -> Iterator[AlpacaTradingServer]:
    with AlpacaTradingServer(cash=1_000_000.0, prices=PRICES, default_price=None) as s:
        yield s


def _rate_limited(seconds: str, path: str = "/v2/positions", method: str = "GET") -> Fault:
    return Fault(429, method=method, path=path, headers={"Retry-After": seconds})


def test_retry_after_is_parsed_as_seconds_or_an_http_date() -> None:
    now = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after("Thu, 03 Dec 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Thu, 03 Dec 2026 11:00:00 GMT", now) == 0.0  # already past
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None


def test_the_wait_is_the_longer_of_backoff_and_retry_after_within_the_budget() -> None:
    policy = BrokerBackoff(initial=0.5, cap=8.0, budget=60.0)
    assert policy.pause(1, None, 0.0) == 0.5 and policy.pause(6, None, 0.0) == 8.0
    assert policy.pause(1, 12.0, 0.0) == 12.0  # the broker's hint wins over a short backoff
    assert policy.pause(3, 1.0, 0.0) == 2.0  # ...and never shortens a longer one
    assert policy.pause(1, 30.0, 40.0) is None  # 40 + 30 > 60: stop, do not sleep past it


def test_a_read_waits_what_retry_after_asks(server: AlpacaTradingServer) -> None:
    slept: list[float] = []
    broker = AlpacaBroker(alpaca_settings(server), sleep=slept.append)
    server.inject(_rate_limited("7"), _rate_limited("3"))
    assert broker.get_positions() == {}
    assert slept == [7.0, 3.0]


def test_a_retry_after_beyond_the_budget_fails_at_once(server: AlpacaTradingServer) -> None:
    slept: list[float] = []
    settings = alpaca_settings(server, broker_max_wait_seconds=60.0)
    broker = AlpacaBroker(settings, sleep=slept.append)
    server.inject(_rate_limited("20"), _rate_limited("20"), _rate_limited("30"))
    with pytest.raises(TransientBrokerError, match="BROKER_MAX_WAIT_SECONDS=60") as error:
        broker.get_positions()
    assert slept == [20.0, 20.0] and error.value.retry_after == 30.0
    assert [r for r in server.requests if r[1] == "/v2/positions"] == [
        ("GET", "/v2/positions", 429)
    ] * 3


def test_an_order_send_waits_retry_after_and_is_created_once(
    warehouse: sa.Engine, server: AlpacaTradingServer
) -> None:
    make_plan(warehouse, {"AAPL": 0.1})
    intent = OrderIntent("mlt-retry-after-1", "AAPL", "buy", Decimal(10), DAY)
    with warehouse.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO orders (client_order_id, strategy, session_date, plan_version, "
                "symbol, side, qty, status, broker, model_name, model_version) VALUES "
                "(:c, 'test', :d, 1, 'AAPL', 'buy', 10, 'planned', 'alpaca', 'm', '1')"
            ),
            {"c": intent.client_order_id, "d": DAY},
        )
    settings = alpaca_settings(server)
    slept: list[float] = []
    server.inject(_rate_limited("5", "/v2/orders", "POST"))
    outcome = send_order(warehouse, settings, AlpacaBroker(settings), intent, slept.append)
    assert outcome == SENT and slept == [5.0]
    assert server.created[intent.client_order_id] == 1


def test_the_account_snapshot_rereads_when_a_fill_lands_between_reads(
    server: AlpacaTradingServer,
) -> None:
    broker = AlpacaBroker(alpaca_settings(server))
    bought = broker.submit_order(OrderIntent("mlt-snap-1", "IBM", "buy", Decimal(100), DAY))
    assert bought.status == "accepted"
    # The order fills after the first positions read, before the account is answered.
    fill = Fault(method="GET", path="/v2/account", before=lambda: server.fill("mlt-snap-1"))
    server.inject(fill)
    snapshot = broker.get_account_snapshot()
    held, cash = snapshot.positions, snapshot.cash
    # Consistent: the fill is in both the shares and the cash, or in neither.
    assert (held, cash) in (({}, 1_000_000.0), ({"IBM": Decimal(100)}, 1_000_000.0 - 12_800.0))
    assert held == {"IBM": Decimal(100)}  # the fill landed mid-read: it was read again
    reads = [r for r in server.requests if r[1] in ("/v2/positions", "/v2/account")]
    assert [r[1] for r in reads].count("/v2/positions") == 4


def test_the_simulated_snapshot_is_one_transaction(warehouse: sa.Engine, settings) -> None:
    broker = SimulatedBroker(warehouse, settings)
    snapshot = broker.get_account_snapshot()
    assert snapshot.cash == broker.get_cash() == settings.initial_capital
    assert snapshot.positions == broker.get_positions() == {}
