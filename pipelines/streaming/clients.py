"""WebSocket clients through alpaca-py: market data and trade updates onto the bus.

:class:`MarketDataClient` runs alpaca-py's ``StockDataStream`` (trades, quotes, minute bars,
updated bars; ``raw_data`` so no model is built per message), :class:`TradeUpdatesClient`
its ``TradingStream`` (``trade_updates``) and :class:`NewsClient` its ``NewsDataStream``
(articles about the universe), each in its own thread, at ``url_override``
(``STREAM_DATA_URL``, ``STREAM_TRADING_URL``, ``STREAM_NEWS_URL``). alpaca-py itself
reconnects with exponential backoff and jitter (1 s to 30 s) and resubscribes every channel
after a reconnect; these classes add:

- one clear log line per protocol error (:class:`ProtocolErrorLog` reads alpaca-py's log
  records: auth failure, connection limit, invalid subscription, slow client ...) and the
  ``reconnects`` / ``protocol_errors`` metrics;
- gap detection: after a reconnect, the first bar of each symbol is compared with the last
  bar before it; missing minutes are fetched from the REST source (``backfill``) and put on
  the bus ahead of that bar.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alpaca.data.enums import DataFeed
from alpaca.data.live import NewsDataStream, StockDataStream
from alpaca.trading.stream import TradingStream

from pipelines.monitoring.stream_metrics import StreamMetrics
from pipelines.streaming import events
from pipelines.streaming.events import MINUTE_NS, Streams
from pipelines.streaming.publisher import Publisher

log = logging.getLogger(__name__)

# Alpaca's stream error codes, what they mean for the operator and what to do.
FIXES = {
    400: "invalid syntax: the client sent a message the server does not understand",
    401: "not authenticated: the client subscribed before authenticating",
    402: "auth failed: check ALPACA_API_KEY and ALPACA_SECRET_KEY (paper and live keys differ)",
    404: "auth timeout: the client did not authenticate in time; it reconnects",
    405: "symbol limit exceeded: the plan allows fewer symbols; shorten UNIVERSE",
    406: (
        "connection limit exceeded: another client (or a stale process) holds this account's "
        "only market-data connection; stop it, the client retries with backoff"
    ),
    407: (
        "slow client: the server cut the connection because the client fell behind; it "
        "reconnects and backfills gaps; subscribe fewer symbols or scale the consumer"
    ),
    409: "insufficient subscription: the feed needs a paid plan; set ALPACA_DATA_FEED=iex",
    410: "invalid subscription: a symbol or channel is not valid for this feed; check UNIVERSE",
}
_TEXT_CODES = {
    "auth failed": 402,
    "failed to authenticate": 402,
    "connection limit exceeded": 406,
    "slow client": 407,
    "insufficient subscription": 409,
}
_ERROR = re.compile(r"^error: (?P<msg>.*) \((?P<code>\d+)\)$")


class ProtocolErrorLog(logging.Handler):
    """Turns alpaca-py's stream log records into one ``event=stream_protocol_error`` line per
    error (with the fix), counts connections and reconnects, and keeps the rest at DEBUG."""

    def __init__(self, stream: str, metrics: StreamMetrics, on_connect: Callable[[], None]):
        super().__init__(logging.DEBUG)
        self.stream, self.metrics, self.on_connect = stream, metrics, on_connect
        self.connections = 0
        self.errors: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if text.startswith("connected to"):
            self.connections += 1
            if self.connections > 1:
                self.metrics.reconnects.labels(self.stream).inc()
                log.warning("event=stream_reconnected stream=%s", self.stream)
            self.on_connect()
            return
        code = self._code(text)
        if code is not None:
            self.errors.append(code)
            self.metrics.protocol_errors.labels(str(code)).inc()
            log.error(
                "event=stream_protocol_error stream=%s code=%d meaning=%r",
                self.stream,
                code,
                FIXES.get(code, text),
            )
        elif "websocket error" in text:
            log.warning("event=stream_disconnected stream=%s detail=%r", self.stream, text)
        elif record.levelno >= logging.ERROR:
            log.error("event=stream_error stream=%s detail=%r", self.stream, text)
        else:
            log.debug("stream=%s %s", self.stream, text)

    @staticmethod
    def _code(text: str) -> int | None:
        match = _ERROR.match(text)
        if match:
            return int(match["code"])
        for words, code in _TEXT_CODES.items():
            if words in text and "error during websocket" in text:
                return code
        return None


def _watch(logger_name: str, handler: ProtocolErrorLog) -> None:
    library = logging.getLogger(logger_name)
    library.handlers = [h for h in library.handlers if not isinstance(h, ProtocolErrorLog)]
    library.addHandler(handler)
    library.setLevel(logging.INFO)
    library.propagate = False  # our line replaces the library's: one line per error


@dataclass(frozen=True)
class ClientConfig:
    api_key: str
    secret_key: str
    data_url: str | None  # None: Alpaca's own
    trading_url: str | None
    symbols: tuple[str, ...]
    feed: str = "iex"
    trades: bool = True
    quotes: bool = True
    news_url: str | None = None  # None: Alpaca's own /v1beta1/news


Backfill = Callable[[str, datetime, datetime], list[dict[str, Any]]]


class _Threaded:
    _stream: Any

    def start(self) -> None:
        self._thread = threading.Thread(target=self._stream.run, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while getattr(self._stream, "_loop", None) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        loop = getattr(self._stream, "_loop", None)
        if loop is not None and loop.is_running():
            self._stream.stop()
            # alpaca-py notices a stop only between messages or after a 5 s receive timeout:
            # closing the socket wakes it now.
            closing = self._stream.close()
            try:
                asyncio.run_coroutine_threadsafe(closing, loop).result(5)
            except Exception:  # the loop ended first: nothing left to close
                closing.close()
        self._thread.join(max(0.0, deadline - time.monotonic()))


class MarketDataClient(_Threaded):
    """Market data from ``StockDataStream`` onto the bus (see the module docstring).

    ``backfill(symbol, first_missing, last_missing)``: raw Alpaca bar messages (``T`` ``b``)
    of the missing minutes (starts, UTC) from the REST source.
    """

    def __init__(
        self,
        config: ClientConfig,
        publisher: Publisher,
        streams: Streams,
        metrics: StreamMetrics,
        backfill: Backfill | None = None,
    ) -> None:
        self.config, self.publisher, self.streams = config, publisher, streams
        self.metrics, self.backfill = metrics, backfill
        self.last_bar: dict[str, int] = {}  # symbol -> last minute start seen (ns)
        self._recheck: set[str] = set()
        self.watch = ProtocolErrorLog("data", metrics, self._connected)
        _watch("alpaca.data.live.websocket", self.watch)
        self._stream = StockDataStream(
            config.api_key,
            config.secret_key,
            raw_data=True,
            feed=DataFeed(config.feed),
            url_override=config.data_url,
            websocket_params={"ping_interval": 10, "ping_timeout": 60, "max_queue": 4096},
        )
        symbols = config.symbols
        self._stream.subscribe_bars(self._on_bar, *symbols)
        self._stream.subscribe_updated_bars(self._on_bar, *symbols)
        if config.trades:
            self._stream.subscribe_trades(self._on_tick, *symbols)
        if config.quotes:
            self._stream.subscribe_quotes(self._on_tick, *symbols)

    def _connected(self) -> None:
        if self.watch.connections > 1:
            self._recheck = set(self.last_bar)

    async def _on_tick(self, msg: dict[str, Any]) -> None:
        self.publisher.put(self.streams.ticks, events.market_entry(msg))

    async def _on_bar(self, msg: dict[str, Any]) -> None:
        received = time.time_ns()
        entry = events.market_entry(msg, received)
        symbol, start = msg["S"], events.payload_ns(entry)
        if symbol in self._recheck and msg.get("T") == "b":
            self._recheck.discard(symbol)
            await self._fill_gap(symbol, start)
        if msg.get("T") == "b":
            self.last_bar[symbol] = max(start, self.last_bar.get(symbol, start))
        self.publisher.put(self.streams.bars, entry)

    async def _fill_gap(self, symbol: str, start_ns: int) -> None:
        last = self.last_bar.get(symbol)
        if last is None or start_ns - last <= MINUTE_NS or self.backfill is None:
            return
        first = datetime.fromtimestamp((last + MINUTE_NS) / 1e9, tz=UTC)
        final = datetime.fromtimestamp((start_ns - MINUTE_NS) / 1e9, tz=UTC)
        try:
            bars = await asyncio.to_thread(self.backfill, symbol, first, final)
        except Exception as exc:  # the stream goes on; the gap stays visible in the log
            log.error(
                "event=stream_gap_backfill_failed symbol=%s from=%s to=%s error=%s",
                symbol,
                first.isoformat(),
                final.isoformat(),
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            )
            return
        for bar in bars:
            self.publisher.put(self.streams.bars, events.market_entry(bar))
        self.metrics.backfilled.inc(len(bars))
        log.warning(
            "event=stream_gap_backfilled symbol=%s from=%s to=%s bars=%d",
            symbol,
            first.isoformat(),
            final.isoformat(),
            len(bars),
        )


class TradeUpdatesClient(_Threaded):
    """``trade_updates`` from ``TradingStream`` onto the bus."""

    def __init__(
        self, config: ClientConfig, publisher: Publisher, streams: Streams, metrics: StreamMetrics
    ) -> None:
        self.publisher, self.streams = publisher, streams
        self.watch = ProtocolErrorLog("trading", metrics, lambda: None)
        _watch("alpaca.trading.stream", self.watch)
        self._stream = TradingStream(
            config.api_key,
            config.secret_key,
            paper=True,
            raw_data=True,
            url_override=config.trading_url,  # type: ignore[arg-type]  # None: Alpaca's
        )
        self._stream.subscribe_trade_updates(self._on_update)

    async def _on_update(self, msg: dict[str, Any]) -> None:
        self.publisher.put(self.streams.trade_updates, events.trade_update_entry(msg["data"]))


class NewsClient(_Threaded):
    """Articles about the universe from ``NewsDataStream`` onto the bus, one entry each.

    alpaca-py calls the handler once per subscribed symbol an article names (an article on
    AAPL and MSFT arrives twice, as the same message object): the repeat is dropped here.
    """

    def __init__(
        self, config: ClientConfig, publisher: Publisher, streams: Streams, metrics: StreamMetrics
    ) -> None:
        self.publisher, self.streams = publisher, streams
        self._last: dict[str, Any] | None = None
        # NewsDataStream logs through StockDataStream's module logger: its protocol errors
        # reach the market-data client's ProtocolErrorLog (one line each, stream=data).
        self._stream = NewsDataStream(
            config.api_key,
            config.secret_key,
            raw_data=True,
            url_override=config.news_url,
            websocket_params={"ping_interval": 10, "ping_timeout": 60, "max_queue": 4096},
        )
        self._stream.subscribe_news(self._on_news, *config.symbols)

    async def _on_news(self, msg: dict[str, Any]) -> None:
        if msg is self._last:
            return
        self._last = msg
        self.publisher.put(self.streams.news, events.news_entry(msg))
