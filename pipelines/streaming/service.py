"""``mltrade stream``: the long-running streaming service (clients, processor, /metrics).

Roles: ``clients`` (WebSockets -> bus), ``processor`` (bus -> warehouse) or ``all`` (both in
one process, the local default). In docker-compose and Kubernetes they run as two services so
the processor can restart (or scale out to more consumers of the group) without dropping the
WebSocket connections.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from datetime import datetime, timedelta
from typing import Any, Literal

import pandas as pd
import sqlalchemy as sa

from pipelines import calendar
from pipelines.config import Settings
from pipelines.errors import ConfigurationError
from pipelines.monitoring.stream_metrics import StreamMetrics
from pipelines.risk.limits import RiskLimits
from pipelines.streaming.clients import (
    ClientConfig,
    MarketDataClient,
    NewsClient,
    TradeUpdatesClient,
)
from pipelines.streaming.events import Streams
from pipelines.streaming.news import NewsSink
from pipelines.streaming.processor import Processor, ProcessorConfig
from pipelines.streaming.publisher import Publisher
from pipelines.streaming.redis_bus import RedisStreamBus
from pipelines.streaming.risk import IntradayRisk

log = logging.getLogger(__name__)
Role = Literal["all", "clients", "processor"]


def client_config(settings: Settings, symbols: list[str]) -> ClientConfig:
    if not symbols:
        raise ConfigurationError(
            "mltrade stream needs symbols: set UNIVERSE=SYM1,SYM2,… or pass --symbols"
        )
    return ClientConfig(
        api_key=settings.alpaca_api_key.get_secret_value(),
        secret_key=settings.alpaca_secret_key.get_secret_value(),
        data_url=settings.stream_data_url or None,
        trading_url=settings.stream_trading_url or None,
        news_url=settings.stream_news_url or None,
        symbols=tuple(symbols),
        feed=settings.alpaca_data_feed,
    )


def rest_backfill(settings: Settings) -> Any:
    """Missing minutes of one symbol from Alpaca's REST bars (``ALPACA_DATA_URL``)."""
    from pipelines.sources.alpaca import AlpacaSource

    source = AlpacaSource.from_settings(settings)

    def fetch(symbol: str, first: datetime, last: datetime) -> list[dict[str, Any]]:
        frame = source.fetch_minute_bars(
            calendar.exchange_date(first), calendar.exchange_date(last), [symbol]
        )
        starts = pd.to_datetime(frame["ts"], utc=True) - pd.Timedelta(minutes=1)
        keep = frame.loc[(starts >= first) & (starts <= last)]
        return [
            {
                "T": "b",
                "S": symbol,
                "t": (ts - timedelta(minutes=1)).to_pydatetime(),
                "o": r.open,
                "h": r.high,
                "l": r.low,
                "c": r.close,
                "v": r.volume,
            }
            for ts, r in zip(pd.to_datetime(keep["ts"], utc=True), keep.itertuples(), strict=True)
        ]

    return fetch


class StreamService:
    """The parts of one ``mltrade stream`` process; :meth:`run` blocks until stopped."""

    def __init__(
        self,
        settings: Settings,
        engine: sa.Engine | None,
        role: Role = "all",
        symbols: list[str] | None = None,
        consumer: str | None = None,
        metrics_port: int | None = None,
        metrics_addr: str = "0.0.0.0",
    ) -> None:
        self.settings, self.engine, self.role = settings, engine, role
        self.stop_event = threading.Event()
        self.metrics = StreamMetrics()
        self.streams = Streams(settings.bus_prefix)
        self.bus = RedisStreamBus(
            settings.bus_url, settings.bus_maxlen, client_name=f"{settings.bus_prefix}:{role}"
        )
        port = settings.stream_metrics_port if metrics_port is None else metrics_port
        self.metrics_port = self.metrics.serve(port, metrics_addr)
        self.clients: list[MarketDataClient | TradeUpdatesClient | NewsClient] = []
        self.symbols = symbols if symbols is not None else list(settings.universe)
        self.publisher: Publisher | None = None
        self.processor: Processor | None = None
        if role in ("all", "clients"):
            self._clients(self.symbols)
        if role in ("all", "processor"):
            self._processor(consumer or f"{socket.gethostname()}-{role}")

    def _clients(self, symbols: list[str]) -> None:
        config = client_config(self.settings, symbols)
        self.publisher = Publisher(self.bus, self.metrics)
        # Alpaca's stream backfills from Alpaca's REST bars; a stream at another URL (a proxy,
        # the local server) only from a REST URL given with it (ALPACA_DATA_URL).
        same_vendor = not self.settings.stream_data_url or self.settings.alpaca_data_url
        backfill = rest_backfill(self.settings) if same_vendor else None
        if backfill is None:
            log.warning("event=stream_no_backfill reason='STREAM_DATA_URL without ALPACA_DATA_URL'")
        self.clients.append(
            MarketDataClient(config, self.publisher, self.streams, self.metrics, backfill)
        )
        if config.trading_url or self.settings.broker == "alpaca":
            self.clients.append(
                TradeUpdatesClient(config, self.publisher, self.streams, self.metrics)
            )
        if self.settings.stream_news:
            self.clients.append(NewsClient(config, self.publisher, self.streams, self.metrics))

    def _processor(self, consumer: str) -> None:
        if self.engine is None:
            raise ConfigurationError("the stream processor needs the warehouse (WAREHOUSE_URL)")
        s = self.settings
        risk = IntradayRisk(
            self.engine,
            RiskLimits.from_settings(s),
            s.initial_capital,
            self.metrics,
        )
        self.processor = Processor(
            self.engine,
            self.bus,
            self.streams,
            ProcessorConfig(consumer, s.stream_batch_size, s.stream_block_ms, s.bus_claim_idle_ms),
            self.metrics,
            risk,
            self._news_sink(),
        )

    def _news_sink(self) -> NewsSink | None:
        """Stores streamed articles when news is streamed (``STREAM_NEWS``); the universe is
        the stream's symbols, else ``UNIVERSE``, the ``universe`` table or the bars' symbols."""
        if not self.settings.stream_news:
            return None
        assert self.engine is not None
        from pipelines.ingest_news import universe_symbols

        universe = self.symbols or universe_symbols(self.engine, self.settings)
        if not universe:
            raise ConfigurationError("streamed news needs a universe: set UNIVERSE or ingest bars")
        return NewsSink(self.engine, universe, "stream")

    def start_clients(self) -> None:
        if self.publisher is not None:
            self.publisher.start()
        for client in self.clients:
            client.start()

    def run(self) -> None:
        """Start the clients, process (or wait) until :meth:`stop`, then shut down cleanly."""
        log.info(
            "event=stream_start role=%s prefix=%s metrics_port=%d pid=%d",
            self.role,
            self.settings.bus_prefix,
            self.metrics_port,
            os.getpid(),
        )
        self.start_clients()
        try:
            if self.processor is not None:
                self.processor.run(self.stop_event)
            else:
                self.stop_event.wait()
        finally:
            for client in self.clients:
                client.stop()
            if self.publisher is not None:
                self.publisher.stop()
            log.info("event=stream_stop role=%s", self.role)

    def stop(self, *_: object) -> None:
        self.stop_event.set()


def serve_forever(service: StreamService) -> None:
    """Run ``service`` until SIGTERM or SIGINT."""
    signal.signal(signal.SIGTERM, service.stop)
    signal.signal(signal.SIGINT, service.stop)
    service.run()
