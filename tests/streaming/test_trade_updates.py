"""Trade updates through TradingStream into the orders ledger, and intraday risk.

Orders go out through the Alpaca adapter to the local trading server; its fills come back as
``trade_updates`` on the local stream server, through alpaca-py's ``TradingStream``, the bus
and the processor into the ledger (state machine, fills). Reconciliation then finds nothing
left to change. Minute bars marking the new positions down past the daily-loss limit turn the
kill switch on, with the reason stored.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from pipelines.execution.brokers import get_broker
from pipelines.execution.orders import submit_plan
from pipelines.execution.reconcile import reconcile
from pipelines.risk.kill_switch import kill_switch_status
from tests.support.alpaca_stream_server import AlpacaStreamServer, sample_day
from tests.support.alpaca_trading_server import AlpacaTradingServer
from tests.support.streaming import ServiceThread, stream_settings, wait_for
from tests.support.trading import PRICES, alpaca_settings, ledger, make_plan

WEIGHTS = {"AAPL": 0.2, "MSFT": 0.1}  # 800 AAPL at 250, 4000 MSFT at 25 on 1,000,000 USD


def _fills(engine: sa.Engine) -> dict[str, float]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT symbol, sum(qty) FROM fills GROUP BY symbol")).all()
    return {r[0]: float(r[1]) for r in rows}


def test_fills_reach_the_ledger_and_a_loss_trips_the_kill_switch(
    warehouse: sa.Engine, redis_url: str, bus_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with (
        AlpacaTradingServer(cash=1_000_000.0, prices=PRICES, default_price=None) as venue,
        AlpacaStreamServer(trading=venue) as server,
    ):
        settings = alpaca_settings(venue)
        settings = stream_settings(redis_url, bus_prefix, server).model_copy(
            update={k: getattr(settings, k) for k in settings.model_fields_set}
        )
        settings = settings.model_copy(update={"universe": ["AAPL", "MSFT"]})
        plan = make_plan(warehouse, WEIGHTS)
        broker = get_broker(settings, warehouse)
        submit_plan(warehouse, settings, plan, broker, "run-1")
        orders = ledger(warehouse, plan)
        aapl = next(c for c, r in orders.items() if r.symbol == "AAPL")
        with ServiceThread(settings, warehouse) as service:
            wait_for(server.trading_listeners, "TradingStream to listen")
            wait_for(server.subscribers, "StockDataStream to subscribe")
            venue.fill(aapl, qty=300)  # a partial fill first
            wait_for(lambda: ledger(warehouse, plan)[aapl].status == "partially_filled", "partial")
            venue.fill()  # then everything
            wait_for(
                lambda: all(r.status == "filled" for r in ledger(warehouse, plan).values()),
                "every order filled in the ledger",
            )
            assert _fills(warehouse) == {"AAPL": 800.0, "MSFT": 4000.0}
            report = reconcile(warehouse, broker, settings)
            assert report.orders_updated == 0  # the stream had brought the ledger up to date

            # AAPL's minutes: 250 USD, then 150: 800 x 100 = 80,000 USD lost, 8% > 3%.
            minutes = [m for m in sample_day(["AAPL"], date(2010, 3, 1))][:2]
            for m, price in zip(minutes, (250.0, 150.0), strict=True):
                m.update(o=price, h=price, l=price, c=price)
            server.publish(minutes[:1])
            wait_for(lambda: service.metrics.equity._value.get() > 0, "the first mark")
            assert not kill_switch_status(warehouse)[0]
            server.publish(minutes[1:])
            wait_for(lambda: kill_switch_status(warehouse)[0], "the kill switch")
            trips = service.metrics.kill_switch_trips._value.get()
    enabled, reason, _ = kill_switch_status(warehouse)
    assert enabled and reason is not None and "intraday daily loss 8.00%" in reason
    assert trips == 1
    assert any("event=kill_switch_on" in r.getMessage() for r in caplog.records)
    with warehouse.connect() as conn:
        sources = set(conn.execute(sa.text("SELECT DISTINCT source FROM order_events")).scalars())
    assert "stream" in sources
    assert minutes[1]["t"] - minutes[0]["t"] == timedelta(minutes=1)
