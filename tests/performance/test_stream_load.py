"""Small, fast versions of the load benchmarks (benchmarks/stream.py): correctness under a
burst, never a wall-clock threshold. Every bar sent is one row; none is lost or duplicated;
every entry's latency is recorded; a burst of fills all reach the ledger."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from pipelines.execution.brokers import get_broker
from pipelines.execution.orders import submit_plan
from tests.support.alpaca_stream_server import AlpacaStreamServer, sample_day
from tests.support.alpaca_trading_server import AlpacaTradingServer
from tests.support.streaming import (
    ServiceThread,
    count_rows,
    expected_bars,
    stored_bars,
    stream_settings,
    wait_for,
)
from tests.support.trading import PRICES, alpaca_settings, ledger, make_plan

SYMBOLS = ["AAPL", "IBM", "MSFT", "XOM", "JNJ", "KO", "PG", "GE", "T", "PFE"]


def test_a_burst_of_bars_is_loaded_exactly_once(
    warehouse: sa.Engine, redis_url: str, bus_prefix: str
) -> None:
    day = sample_day(SYMBOLS, date(2010, 3, 4))[:1500]  # 150 minutes of ten symbols
    with AlpacaStreamServer() as server:
        settings = stream_settings(redis_url, bus_prefix, server).model_copy(
            update={"universe": SYMBOLS, "stream_batch_size": 500}
        )
        with ServiceThread(settings, warehouse) as service:
            wait_for(server.subscribers, "the client to subscribe")
            server.publish(day, frame_size=500)  # as fast as the server can send
            wait_for(lambda: count_rows(warehouse) == len(day), "every bar", 300)

            def observed() -> float:  # entries whose latency was recorded (after their ack)
                samples = service.metrics.latency.collect()[0].samples
                return sum(s.value for s in samples if s.name.endswith("_count"))

            wait_for(lambda: observed() >= len(day), "every latency recorded")
            recorded = observed()
    assert stored_bars(warehouse).equals(expected_bars(day))  # none lost, none twice
    assert recorded == len(day)  # one latency per entry, each recorded once


def test_a_burst_of_fills_reaches_the_ledger(
    warehouse: sa.Engine, redis_url: str, bus_prefix: str
) -> None:
    weights = {s: 0.05 for s in PRICES}  # twelve orders
    with (
        AlpacaTradingServer(cash=1_000_000.0, prices=PRICES, default_price=None) as venue,
        AlpacaStreamServer(trading=venue) as server,
    ):
        settings = alpaca_settings(venue)
        settings = stream_settings(redis_url, bus_prefix, server).model_copy(
            update={k: getattr(settings, k) for k in settings.model_fields_set}
        )
        plan = make_plan(warehouse, weights)
        submit_plan(warehouse, settings, plan, get_broker(settings, warehouse), "run-1")
        with ServiceThread(settings, warehouse) as service:
            wait_for(server.trading_listeners, "TradingStream to listen")
            venue.fill()  # every order at once
            wait_for(
                lambda: all(r.status == "filled" for r in ledger(warehouse, plan).values()),
                "every fill in the ledger",
            )
            updates = service.metrics.messages_out.labels("tu")._value.get()
    orders = ledger(warehouse, plan)
    assert len(orders) == len(weights)
    with warehouse.connect() as conn:
        fills = conn.execute(sa.text("SELECT count(*), count(DISTINCT fill_id) FROM fills")).one()
    assert fills[0] == fills[1] == len(orders)  # one fill row per order, none twice
    assert updates >= len(orders)  # each order's new + fill updates went through the bus
