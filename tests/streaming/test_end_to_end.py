"""Server -> alpaca-py client -> Redis Streams -> processor -> minute_bars, end to end."""

from __future__ import annotations

from datetime import date

import pandas as pd
import requests
import sqlalchemy as sa

from pipelines import calendar
from pipelines.monitoring.stream_metrics import StreamMetrics
from pipelines.streaming.events import Streams
from pipelines.streaming.processor import Processor, ProcessorConfig
from pipelines.streaming.redis_bus import RedisStreamBus
from tests.support.alpaca_stream_server import AlpacaStreamServer, sample_day
from tests.support.streaming import (
    SYMBOLS,
    ServiceThread,
    count_rows,
    expected_bars,
    stored_bars,
    stream_settings,
    wait_for,
)

SESSION = date(2010, 3, 1)


def test_bars_arrive_validated_and_exactly_once(
    warehouse: sa.Engine, redis_url: str, bus_prefix: str
) -> None:
    day = sample_day(SYMBOLS, SESSION)[:60]  # the first 20 minutes of three symbols
    bad = {**day[-1], "t": day[-1]["t"] + pd.Timedelta(minutes=1), "h": 1.0, "l": 5.0}
    with AlpacaStreamServer() as server:
        settings = stream_settings(redis_url, bus_prefix, server)
        with ServiceThread(settings, warehouse) as service:
            wait_for(server.subscribers, "the client to subscribe")
            server.publish(day[:30])
            server.publish(day[:45])  # a replay of what was sent: at least once on the wire
            server.publish(day[45:] + [bad])
            wait_for(lambda: count_rows(warehouse) == len(day), "every bar in minute_bars")
            wait_for(lambda: count_rows(warehouse, "quarantine") == 1, "the bad bar quarantined")
            metrics = requests.get(f"http://127.0.0.1:{service.metrics_port}/metrics").text
    assert stored_bars(warehouse).equals(expected_bars(day))
    with warehouse.connect() as conn:
        row = conn.execute(sa.text("SELECT expectation, reason, source FROM quarantine")).one()
    assert row.expectation == "high_ge_low" and "inconsistent" in row.reason
    assert 'mltrade_stream_messages_out_total{kind="b"} 91.0' in metrics  # 30 + 45 + 16
    assert "mltrade_stream_quarantined_rows_total 1.0" in metrics
    assert "mltrade_stream_latency_seconds_count" in metrics


def test_the_processor_warms_up_without_writing(
    warehouse: sa.Engine, redis_url: str, bus_prefix: str
) -> None:
    bus = RedisStreamBus(redis_url)
    processor = Processor(
        warehouse, bus, Streams(bus_prefix), ProcessorConfig("warm"), StreamMetrics()
    )
    assert processor.warm_up(date(2010, 3, 6)) > 0  # a Saturday: the session before it
    assert calendar.schedule.cache_info().currsize > 0  # the calendar is loaded
    assert count_rows(warehouse) == count_rows(warehouse, "quarantine") == 0
    bus.close()
