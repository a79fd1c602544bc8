"""Fault runs: after each recovery the warehouse holds exactly the rows of a clean run.

- the WebSocket drops mid-session and minutes pass while it is down: alpaca-py reconnects and
  resubscribes, the client sees the gap and backfills the missing minutes from the REST bars;
- the processor is SIGKILLed mid-stream (a separate ``mltrade stream --role processor``
  process) and started again: its pending entries are processed again, idempotently;
- a consumer dies for good: another consumer of the group reclaims its entries (XAUTOCLAIM);
- Redis restarts (AOF on): producers and the processor reconnect and carry on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa

from pipelines.monitoring.stream_metrics import StreamMetrics
from pipelines.streaming import events
from pipelines.streaming.events import Streams
from pipelines.streaming.processor import Processor, ProcessorConfig
from pipelines.streaming.redis_bus import RedisStreamBus
from tests.support.alpaca_data_server import AlpacaDataServer
from tests.support.alpaca_stream_server import AlpacaStreamServer, rest_minute_bars, sample_day
from tests.support.redis_server import RedisServer
from tests.support.streaming import (
    SYMBOLS,
    ServiceThread,
    count_rows,
    expected_bars,
    stored_bars,
    stream_settings,
    wait_for,
)

SESSION = date(2010, 3, 2)


@pytest.fixture(scope="module")
def day() -> list[dict[str, Any]]:
    return sample_day(SYMBOLS, SESSION)[:90]  # 30 minutes of three symbols


def test_websocket_drop_reconnects_and_backfills_the_gap(
    warehouse: sa.Engine, redis_url: str, bus_prefix: str, day: list[dict[str, Any]]
) -> None:
    with (
        AlpacaDataServer({"1Min": rest_minute_bars(day)}) as rest,
        AlpacaStreamServer() as server,
    ):
        settings = stream_settings(redis_url, bus_prefix, server, alpaca_data_url=rest.url)
        with ServiceThread(settings, warehouse) as service:
            wait_for(server.subscribers, "the client to subscribe")
            server.publish(day[:30])
            wait_for(lambda: count_rows(warehouse) == 30, "the first ten minutes")
            assert server.drop_connections() >= 1
            wait_for(lambda: server.subscribers() == 0, "the server to forget the client")
            # minutes 10-14 happen while the client is away: nobody receives them
            wait_for(lambda: server.connections == 2 and server.subscribers(), "resubscription")
            server.publish(day[45:])
            wait_for(lambda: count_rows(warehouse) == len(day), "every minute, gap included")
            reconnects = service.metrics.reconnects.labels("data")._value.get()
            backfilled = service.metrics.backfilled._value.get()
    assert stored_bars(warehouse).equals(expected_bars(day))
    assert reconnects == 1
    assert backfilled == 15  # five minutes of three symbols, from GET /v2/stocks/bars
    assert any(r["path"] == "/v2/stocks/bars" for r in rest.requests) or rest.requests


def _processor(settings_env: dict[str, str], consumer: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "stream",
            "--role",
            "processor",
            "--consumer",
            consumer,
            "--metrics-port",
            "0",
        ],
        env={**os.environ, **settings_env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _env(redis_url: str, prefix: str) -> dict[str, str]:
    return {
        "BUS_URL": redis_url,
        "BUS_PREFIX": prefix,
        "BUS_CLAIM_IDLE_MS": "500",
        "STREAM_BATCH_SIZE": "7",  # small reads: the kill lands between commits
        "STREAM_BLOCK_MS": "20",
    }


@pytest.mark.slow  # two processor processes start (imports alone take ~10 s each here)
def test_sigkill_of_the_processor_loses_and_duplicates_nothing(
    warehouse: sa.Engine, redis_url: str, bus_prefix: str, day: list[dict[str, Any]]
) -> None:
    with AlpacaStreamServer() as server:
        settings = stream_settings(redis_url, bus_prefix, server)
        with ServiceThread(settings, None, role="clients"):
            wait_for(server.subscribers, "the client to subscribe")
            processor = _processor(_env(redis_url, bus_prefix), "p1")
            try:
                server.publish(day)
                wait_for(lambda: count_rows(warehouse) >= 20, "some rows committed", 600)
                processor.send_signal(signal.SIGKILL)
                processor.wait(10)
                half = count_rows(warehouse)
                assert half < len(day), "the kill came too late to test anything"
                processor = _processor(_env(redis_url, bus_prefix), "p1")  # same consumer
                wait_for(lambda: count_rows(warehouse) == len(day), "the rest after restart", 600)
            finally:
                processor.kill()
                processor.wait(10)
    assert stored_bars(warehouse).equals(expected_bars(day))
    bus = RedisStreamBus(redis_url)
    assert bus.lag([Streams(bus_prefix).bars], Streams(bus_prefix).group) == 0
    bus.close()


def test_a_dead_consumers_entries_are_reclaimed(
    warehouse: sa.Engine, redis_url: str, bus_prefix: str, day: list[dict[str, Any]]
) -> None:
    streams, bus = Streams(bus_prefix), RedisStreamBus(redis_url)
    bus.ensure_group(list(streams.all), streams.group)
    bus.publish(streams.bars, [events.market_entry(m) for m in day[:12]])
    taken = bus.read(list(streams.all), streams.group, "dead", 100, 10)
    assert len(taken) == 12  # delivered to "dead", which never acknowledges them
    survivor = Processor(
        warehouse,
        bus,
        streams,
        ProcessorConfig("alive", claim_idle_ms=0, claim_every_s=0),
        StreamMetrics(),
    )
    stop = threading.Event()
    thread = threading.Thread(target=survivor.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: count_rows(warehouse) == 12, "the reclaimed entries committed")
    finally:
        stop.set()
        thread.join(10)
    assert bus.lag(list(streams.all), streams.group) == 0
    assert stored_bars(warehouse).equals(expected_bars(day[:12]))
    bus.close()


def test_redis_restart_loses_nothing(
    warehouse: sa.Engine,
    redis_server: RedisServer | None,
    redis_url: str,
    bus_prefix: str,
    day: list[dict[str, Any]],
) -> None:
    if redis_server is None:
        pytest.skip("needs a private redis-server to restart (the shared one serves Celery)")
    with AlpacaStreamServer() as server:
        settings = stream_settings(redis_url, bus_prefix, server)
        with ServiceThread(settings, warehouse):
            wait_for(server.subscribers, "the client to subscribe")
            server.publish(day[:45])
            wait_for(lambda: count_rows(warehouse) == 45, "the first half")
            redis_server.stop()
            server.publish(day[45:])  # arrives while Redis is down: buffered by the client
            redis_server.start()
            wait_for(lambda: count_rows(warehouse) == len(day), "the second half after restart")
    assert stored_bars(warehouse).equals(expected_bars(day))
