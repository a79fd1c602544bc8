"""Trade updates through TradingStream into the orders ledger, and intraday risk.

Orders go out through the Alpaca adapter to the local trading server; its fills come back as
``trade_updates`` on the local stream server, through alpaca-py's ``TradingStream``, the bus
and the processor into the ledger (state machine, fills). Reconciliation then finds nothing
left to change. Minute bars marking the new positions down past the daily-loss limit turn the
kill switch on, with the reason stored.
"""

from __future__ import annotations

import logging
import threading
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from pipelines.execution.brokers import get_broker
from pipelines.execution.orders import submit_plan
from pipelines.execution.reconcile import reconcile
from pipelines.monitoring.stream_metrics import StreamMetrics
from pipelines.risk.kill_switch import kill_switch_status
from pipelines.streaming import events
from pipelines.streaming.events import Streams
from pipelines.streaming.processor import Processor, ProcessorConfig
from pipelines.streaming.redis_bus import RedisStreamBus
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


def _update(order: dict[str, Any], event: str) -> dict[str, str]:
    public = {k: v for k, v in order.items() if not k.startswith("_")}
    return events.trade_update_entry({"event": event, "order": public})


def test_a_batch_with_late_duplicate_and_unreadable_updates_held_by_two_processors(
    warehouse: sa.Engine, redis_url: str, bus_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """One read's trade updates, in the worst order, handled at the same time by two
    processors (the second reclaimed the first's entries): each good update applied once,
    the late partial fill and the unreadable entry refused with their reasons, every entry
    acknowledged."""
    caplog.set_level(logging.WARNING)
    with AlpacaTradingServer(cash=1_000_000.0, prices=PRICES, default_price=None) as venue:
        settings = alpaca_settings(venue)
        plan = make_plan(warehouse, WEIGHTS)
        submit_plan(warehouse, settings, plan, get_broker(settings, warehouse), "run-1")
        by_symbol = {r.symbol: c for c, r in ledger(warehouse, plan).items()}
        aapl, msft = by_symbol["AAPL"], by_symbol["MSFT"]
        venue.fill(aapl, qty=300)
        partial = venue.orders()
        venue.fill()
        filled = {o["client_order_id"]: o for o in venue.orders()}
    late = next(o for o in partial if o["client_order_id"] == aapl)
    entries = [
        _update(filled[aapl], "fill"),
        _update(late, "partial_fill"),  # older than the fill before it
        events.trade_update_entry({"event": "fill", "order": {"id": "no-such-shape"}}),
        _update(filled[msft], "fill"),
        _update(filled[msft], "fill"),  # redelivered
    ]
    streams, bus = Streams(bus_prefix), RedisStreamBus(redis_url)
    bus.ensure_group(list(streams.all), streams.group)
    bus.publish(streams.trade_updates, entries)
    taken = bus.read(list(streams.all), streams.group, "p1", 100, 10)
    reclaimed = bus.reclaim(list(streams.all), streams.group, "p2", 0, 100)
    assert len(taken) == len(reclaimed) == len(entries)
    processors = [
        Processor(warehouse, bus, streams, ProcessorConfig(name), StreamMetrics())
        for name in ("p1", "p2")
    ]
    threads = [
        threading.Thread(target=p.handle, args=(batch,))
        for p, batch in zip(processors, (taken, reclaimed), strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    rows = ledger(warehouse, plan)
    assert {rows[c].status for c in (aapl, msft)} == {"filled"}
    assert _fills(warehouse) == {"AAPL": 800.0, "MSFT": 4000.0}
    with warehouse.connect() as conn:
        fills = conn.execute(sa.text("SELECT count(*) FROM fills")).scalar_one()
        stream_events = conn.execute(
            sa.text("SELECT count(*) FROM order_events WHERE source = 'stream'")
        ).scalar_one()
    assert (fills, stream_events) == (2, 2)  # one fill and one event per order
    assert bus.lag(list(streams.all), streams.group) == 0
    assert bus.pending(list(streams.all), streams.group, "p1") == []
    assert bus.pending(list(streams.all), streams.group, "p2") == []
    refused = [r.getMessage() for r in caplog.records if "trade_update_refused" in r.getMessage()]
    assert any("unreadable trade update" in m for m in refused)
    assert any(aapl in m and "partially_filled is not an allowed" in m for m in refused)
    bus.close()
