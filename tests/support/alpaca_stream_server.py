"""A local WebSocket server speaking Alpaca's market-data and trading stream protocols.

Market data (``ws://127.0.0.1:PORT/v2/iex``, as alpaca-py 0.44's ``StockDataStream`` speaks it):

- on connect ``[{"T":"success","msg":"connected"}]``; then ``{"action":"auth","key","secret"}``
  answered ``[{"T":"success","msg":"authenticated"}]``, or ``[{"T":"error","code":402,
  "msg":"auth failed"}]`` (wrong keys) or ``406 connection limit exceeded`` (more live
  connections than ``max_connections``), each followed by a close;
- ``{"action":"subscribe"|"unsubscribe", "trades":[…], "quotes":[…], "bars":[…],
  "updatedBars":[…]}`` answered with the full ``{"T":"subscription", …}`` list; a malformed
  symbol is ``[{"T":"error","code":410,"msg":"invalid subscribe action for this feed"}]``
  and changes nothing;
- frames are lists of messages, msgpack when the client sent ``Content-Type:
  application/msgpack`` (``t`` a msgpack timestamp), JSON text otherwise (``t`` RFC 3339);
- a client that falls more than ``slow_client_frames`` frames behind gets ``[{"T":"error",
  "code":407,"msg":"slow client"}]`` and is disconnected, as Alpaca does.

News (``ws://127.0.0.1:PORT/v1beta1/news``, ``NewsDataStream``): the same connect, auth, limit
and framing; ``{"action":"subscribe","news":["*"]}`` (or tickers) answered ``{"T":
"subscription","news":[…]}``; articles are ``{"T":"n","id","headline","summary","author",
"created_at","updated_at","url","content","symbols","source"}`` (times msgpack timestamps or
RFC 3339), sent to a client subscribed to ``*`` or to one of the article's ``symbols``
(:func:`news_article` builds one; :meth:`AlpacaStreamServer.publish` sends them). The
connection limit counts each endpoint's connections apart, as Alpaca's does.

Trading (``ws://127.0.0.1:PORT/stream``, ``TradingStream``): JSON ``{"action":"authenticate",
"data":{"key_id","secret_key"}}`` answered ``{"stream":"authorization","data":{"status":
"authorized"|"unauthorized","action":"authenticate"}}``; ``{"action":"listen","data":
{"streams":["trade_updates"]}}`` answered ``{"stream":"listening",…}``. Trade updates are
driven by the local trading server's orders (:class:`TradeUpdateFeed`): every change of an
order's status or filled quantity there becomes one ``{"stream":"trade_updates","data":
{"event":"new"|"fill"|"partial_fill"|"canceled"|…,"order":{…}}}``.

Data: :func:`recorded_day` builds a day of minute bars from a *real* daily bar of the sample
data (open, high, low, close and volume of the minutes aggregate exactly to the daily bar);
:meth:`AlpacaStreamServer.replay` plays such a day at a chosen speed; :meth:`publish` pushes
any messages (the benchmark pushes as fast as asked). :attr:`sent` records when each bar left
(``(symbol, t) -> time.time_ns()``), so a benchmark can time server send -> warehouse row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import threading
import time
import zlib
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

import msgpack
import numpy as np
import pandas as pd
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

_SYMBOL = re.compile(r"^[A-Z][A-Z0-9.\-]{0,15}$")
CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")
NEWS_CHANNELS = ("news",)
NEWS_PATH = "/v1beta1/news"
_TYPE_CHANNEL = {
    "t": "trades",
    "q": "quotes",
    "b": "bars",
    "u": "updatedBars",
    "d": "dailyBars",
    "n": "news",
}
_TIMES = ("t", "created_at", "updated_at")
SESSION_MINUTES = 390


# ----------------------------------------------------------------------------- data
def recorded_day(daily: pd.DataFrame) -> list[dict[str, Any]]:
    """Alpaca bar messages (``T`` = ``b``, ``t`` = minute start, UTC) for the sessions of
    ``daily`` (canonical daily bars: symbol, session_date, OHLCV), ordered by time then symbol.

    The minutes of a (symbol, session) aggregate exactly to its daily bar: the first open is
    the day's open, the last close its close, the extremes its high and low, the volumes sum
    to its volume (whole shares). The path between them is a fixed pseudo-random walk seeded
    by the symbol and date, so a replay is the same every time.
    """
    from pipelines import calendar

    out: list[dict[str, Any]] = []
    if daily.empty:
        return out
    opens = calendar.schedule(min(daily["session_date"]), max(daily["session_date"]))["open"]
    for row in daily.itertuples(index=False):
        out.extend(_minutes(row, pd.Timestamp(opens[row.session_date]).tz_convert("UTC")))
    out.sort(key=lambda m: (m["t"], m["S"]))
    return out


def _minutes(row: Any, opens_at: pd.Timestamp) -> list[dict[str, Any]]:
    n = SESSION_MINUTES
    seed = zlib.crc32(f"{row.symbol}|{row.session_date}".encode())
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    o, h, lo, c = float(row.open), float(row.high), float(row.low), float(row.close)
    # A walk from open to close that touches the low at one minute and the high at another.
    walk = np.cumsum(rng.normal(0, 1, n))
    bridge = walk - np.linspace(0, walk[-1], n)
    i_low, i_high = sorted(rng.choice(np.arange(1, n - 1), 2, replace=False))
    if rng.random() < 0.5:
        i_low, i_high = i_high, i_low
    base = np.interp(np.arange(n), [0, i_low, i_high, n - 1], [o, lo, h, c])
    span = max(h - lo, 1e-9)
    closes = np.clip(base + bridge / (np.abs(bridge).max() + 1e-9) * span * 0.05, lo, h)
    closes[[i_low, i_high, n - 1]] = [lo, h, c]
    closes = np.round(closes, 4)
    opens = np.concatenate([[o], closes[:-1]])
    highs, lows = np.maximum(opens, closes), np.minimum(opens, closes)
    # U-shaped (busy open and close), never two minutes alike: no run looks stale.
    weights = (1.5 - np.sin(np.linspace(0, np.pi, n))) * (1 + 0.05 * np.sin(np.arange(n) * 1.7))
    total = int(round(float(row.volume)))
    volumes = np.floor(weights / weights.sum() * total).astype(np.int64)
    volumes[-1] += total - int(volumes.sum())
    return [
        {
            "T": "b",
            "S": row.symbol,
            "t": (opens_at + pd.Timedelta(minutes=i)).to_pydatetime(),
            "o": float(opens[i]),
            "h": float(highs[i]),
            "l": float(lows[i]),
            "c": float(closes[i]),
            "v": int(volumes[i]),
            "n": int(volumes[i] // 100) + 1,
            "vw": round(float((highs[i] + lows[i] + closes[i]) / 3), 4),
        }
        for i in range(n)
    ]


def sample_day(symbols: list[str], session: date) -> list[dict[str, Any]]:
    """:func:`recorded_day` of the real sample bars of ``symbols`` on ``session``."""
    from pipelines.sources.sample import SampleSource

    return recorded_day(SampleSource().fetch_daily_bars(session, session, symbols))


def rest_minute_bars(messages: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The same bars in the REST shape (``GET /v2/stocks/bars``) for :class:`AlpacaDataServer`
    (``{"1Min": rest_minute_bars(day)}``): the source a gap is backfilled from."""
    out: dict[str, list[dict[str, Any]]] = {}
    for m in sorted(messages, key=lambda m: (m["S"], m["t"])):
        item = {k: m[k] for k in ("o", "h", "l", "c", "v", "n", "vw")}
        item["t"] = m["t"].strftime("%Y-%m-%dT%H:%M:%SZ")
        out.setdefault(m["S"], []).append(item)
    return out


def news_article(
    i: int, created_at: datetime | None, symbols: list[str], headline: str, **extra: Any
) -> dict[str, Any]:
    """A news stream message (``T`` = ``n``) as Alpaca sends it (``created_at`` UTC)."""
    return {
        "T": "n",
        "id": i,
        "headline": headline,
        "summary": f"{headline}: what the company said.",
        "author": "Benzinga Newsdesk",
        "created_at": created_at,
        "updated_at": created_at,
        "url": f"https://www.benzinga.com/news/{i}",
        "content": "<p>Body of the story.</p>",
        "symbols": symbols,
        "source": "benzinga",
        **extra,
    }


# ----------------------------------------------------------------------------- encoding
def _wire(message: dict[str, Any], packed: bool) -> dict[str, Any]:
    out = dict(message)
    for name in _TIMES:
        stamp = out.get(name)
        if isinstance(stamp, datetime):
            if packed:
                out[name] = msgpack.Timestamp.from_datetime(stamp)
            else:
                out[name] = stamp.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return out


def _encode(messages: list[dict[str, Any]], packed: bool) -> bytes | str:
    body = [_wire(m, packed) for m in messages]
    return msgpack.packb(body, datetime=False) if packed else json.dumps(body)


# ----------------------------------------------------------------------------- server
class _Client:
    def __init__(
        self, ws: ServerConnection, packed: bool, queue_frames: int, news: bool = False
    ) -> None:
        self.ws, self.packed, self.news = ws, packed, news
        self.channels = NEWS_CHANNELS if news else CHANNELS
        self.subs: dict[str, set[str]] = {c: set() for c in self.channels}
        self.queue: asyncio.Queue[bytes | str | None] = asyncio.Queue(queue_frames)
        self.authenticated = False

    def wants(self, message: dict[str, Any]) -> bool:
        channel = _TYPE_CHANNEL.get(message.get("T", ""))
        if channel not in self.subs:
            return False
        subs = self.subs[channel]
        if channel == "news":
            return "*" in subs or any(s in subs for s in message.get("symbols") or [])
        return "*" in subs or message.get("S") in subs


class AlpacaStreamServer:
    """``with AlpacaStreamServer() as s: StockDataStream(k, s_, url_override=s.data_url)``."""

    def __init__(
        self,
        api_key: str = "test-key",
        secret_key: str = "test-secret",
        max_connections: int = 1,
        slow_client_frames: int = 10_000,
        trading: Any = None,
        poll_s: float = 0.002,
    ) -> None:
        self.api_key, self.secret_key = api_key, secret_key
        self.max_connections = max_connections
        self.slow_client_frames = slow_client_frames
        self.sent: dict[tuple[str, datetime], int] = {}  # (symbol, bar start) -> send ns
        self.errors: list[int] = []  # codes of the error messages sent
        self.connections = 0  # authenticated data connections ever made
        self._clients: set[_Client] = set()
        self._trading_clients: set[ServerConnection] = set()
        self._loop = asyncio.new_event_loop()
        self._server: Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.trade_updates = TradeUpdateFeed(trading, self, poll_s) if trading else None

    # -- lifecycle
    def start(self) -> AlpacaStreamServer:
        self._thread.start()
        self._server = self._call(self._serve())
        if self.trade_updates:
            self.trade_updates.start()
        return self

    async def _serve(self) -> Server:
        return await serve(self._handle, "127.0.0.1", 0, compression=None, max_queue=None)

    def stop(self) -> None:
        if self.trade_updates:
            self.trade_updates.stop()
        if self._server is not None:
            self._server.close()
            self._call(self._server.wait_closed())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> AlpacaStreamServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(next(iter(self._server.sockets)).getsockname()[1])

    @property
    def data_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v2/iex"

    @property
    def news_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{NEWS_PATH}"

    @property
    def trading_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"

    def _call(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # -- scripting
    def publish(self, messages: list[dict[str, Any]], frame_size: int = 100) -> None:
        """Send ``messages`` (Alpaca data messages, ``t`` a UTC datetime) to every subscriber,
        ``frame_size`` messages a frame. Thread-safe; returns once queued."""
        self._call(self._publish(messages, frame_size))

    def publish_nowait(self, messages: list[dict[str, Any]], frame_size: int = 100) -> None:
        asyncio.run_coroutine_threadsafe(self._publish(messages, frame_size), self._loop)

    def drop_connections(self) -> int:
        """Close every data and trading connection abruptly (a network cut); return how many."""
        return int(self._call(self._drop()))

    def subscribers(self) -> int:
        """Market-data connections with a subscription."""
        return sum(1 for c in self._clients if not c.news and any(c.subs.values()))

    def news_subscribers(self) -> int:
        """News connections with a subscription."""
        return sum(1 for c in self._clients if c.news and any(c.subs.values()))

    def replay(
        self,
        messages: list[dict[str, Any]],
        speed: float = 60.0,
        stop: threading.Event | None = None,
    ) -> int:
        """Play a recorded day: each minute's bars are sent when their minute ends, the time
        between minutes divided by ``speed`` (60: a session in 6.5 minutes). Blocks; returns
        the bars sent."""
        by_minute: dict[datetime, list[dict[str, Any]]] = {}
        for m in messages:
            by_minute.setdefault(m["t"], []).append(m)
        sent, previous = 0, None
        for minute in sorted(by_minute):
            if previous is not None:
                wait = (minute - previous).total_seconds() / speed
                if stop is not None and stop.wait(wait):
                    break
                if stop is None:
                    time.sleep(wait)
            self.publish(by_minute[minute])
            sent += len(by_minute[minute])
            previous = minute
        return sent

    # -- protocol
    async def _publish(self, messages: list[dict[str, Any]], frame_size: int) -> None:
        now = time.time_ns()
        for m in messages:
            if m.get("T") in ("b", "u"):
                self.sent[(m["S"], m["t"])] = now
        for client in list(self._clients):
            wanted = [m for m in messages if client.wants(m)]
            for i in range(0, len(wanted), frame_size):
                frame = _encode(wanted[i : i + frame_size], client.packed)
                try:
                    client.queue.put_nowait(frame)
                except asyncio.QueueFull:
                    await self._slow(client)
                    break

    async def _slow(self, client: _Client) -> None:
        self._clients.discard(client)
        self.errors.append(407)
        while not client.queue.empty():
            client.queue.get_nowait()
        client.queue.put_nowait(_encode([_error(407, "slow client")], client.packed))
        client.queue.put_nowait(None)

    async def _drop(self) -> int:
        victims = [c.ws for c in self._clients] + list(self._trading_clients)
        for ws in victims:
            ws.transport.abort()  # no close frame: the client sees a dead connection
        return len(victims)

    async def _handle(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request else ""
        if path.startswith("/stream"):
            await self._handle_trading(ws)
            return
        headers = ws.request.headers if ws.request else {}
        packed = "msgpack" in headers.get("Content-Type", "")
        client = _Client(ws, packed, self.slow_client_frames, news=path.startswith(NEWS_PATH))
        await ws.send(_encode([{"T": "success", "msg": "connected"}], packed))
        try:
            if not await self._authenticate(client):
                return
            self._clients.add(client)
            writer = asyncio.create_task(self._writer(client))
            try:
                async for raw in ws:
                    await self._on_request(client, raw)
            finally:
                self._clients.discard(client)
                writer.cancel()
        except ConnectionClosed:
            pass

    async def _authenticate(self, client: _Client) -> bool:
        request = _decode(await client.ws.recv(), client.packed)
        if request.get("action") != "auth":
            await self._refuse(client, 401, "not authenticated")
            return False
        if request.get("key") != self.api_key or request.get("secret") != self.secret_key:
            await self._refuse(client, 402, "auth failed")
            return False
        live = [c for c in self._clients if c.authenticated and c.news == client.news]
        if len(live) >= self.max_connections:
            await self._refuse(client, 406, "connection limit exceeded")
            return False
        client.authenticated = True
        self.connections += 1
        await client.ws.send(_encode([{"T": "success", "msg": "authenticated"}], client.packed))
        return True

    async def _refuse(self, client: _Client, code: int, msg: str) -> None:
        self.errors.append(code)
        await client.ws.send(_encode([_error(code, msg)], client.packed))
        await client.ws.close()

    async def _on_request(self, client: _Client, raw: bytes | str) -> None:
        request = _decode(raw, client.packed)
        action = request.get("action")
        if action not in ("subscribe", "unsubscribe"):
            self.errors.append(400)
            await client.queue.put(_encode([_error(400, "invalid syntax")], client.packed))
            return
        asked = {c: list(request.get(c) or []) for c in client.channels if c in request}
        if any(not (s == "*" or _SYMBOL.match(str(s))) for v in asked.values() for s in v):
            self.errors.append(410)
            error = _error(410, "invalid subscribe action for this feed")
            await client.queue.put(_encode([error], client.packed))
            return
        for channel, symbols in asked.items():
            if action == "subscribe":
                client.subs[channel].update(symbols)
            else:
                client.subs[channel].difference_update(symbols)
        reply = {"T": "subscription", **{c: sorted(client.subs[c]) for c in client.channels}}
        await client.queue.put(_encode([reply], client.packed))

    async def _writer(self, client: _Client) -> None:
        try:
            while (frame := await client.queue.get()) is not None:
                await client.ws.send(frame)
            await client.ws.close(1008, "slow client")
        except ConnectionClosed:
            pass

    # -- trading stream
    async def _handle_trading(self, ws: ServerConnection) -> None:
        try:
            request = json.loads(await ws.recv())
            data = request.get("data") or {}
            ok = (
                request.get("action") == "authenticate"
                and data.get("key_id") == self.api_key
                and data.get("secret_key") == self.secret_key
            )
            status = "authorized" if ok else "unauthorized"
            answer = {
                "stream": "authorization",
                "data": {"status": status, "action": "authenticate"},
            }
            await ws.send(json.dumps(answer))
            if not ok:
                await ws.close()
                return
            async for raw in ws:
                request = json.loads(raw)
                if request.get("action") == "listen":
                    streams = (request.get("data") or {}).get("streams") or []
                    await ws.send(json.dumps({"stream": "listening", "data": {"streams": streams}}))
                    if "trade_updates" in streams:
                        self._trading_clients.add(ws)
        except ConnectionClosed:
            pass
        finally:
            self._trading_clients.discard(ws)

    def send_trade_update(self, update: dict[str, Any]) -> None:
        """Send one ``trade_updates`` message to every listening trading client."""
        text = json.dumps({"stream": "trade_updates", "data": update})
        asyncio.run_coroutine_threadsafe(self._broadcast(text), self._loop)

    async def _broadcast(self, text: str) -> None:
        for ws in list(self._trading_clients):
            try:
                await ws.send(text)
            except ConnectionClosed:
                self._trading_clients.discard(ws)

    def trading_listeners(self) -> int:
        return len(self._trading_clients)


def _error(code: int, msg: str) -> dict[str, Any]:
    return {"T": "error", "code": code, "msg": msg}


def _decode(raw: bytes | str, packed: bool) -> dict[str, Any]:
    value = msgpack.unpackb(raw) if isinstance(raw, bytes) and packed else json.loads(raw)
    return value if isinstance(value, dict) else {}


# ----------------------------------------------------------------------------- trade updates
_EVENTS = {
    "new": "new",
    "accepted": "new",
    "partially_filled": "partial_fill",
    "filled": "fill",
    "canceled": "canceled",
    "expired": "expired",
    "rejected": "rejected",
}


class TradeUpdateFeed:
    """Watches an :class:`~tests.support.alpaca_trading_server.AlpacaTradingServer` and turns
    each change of an order (status, filled quantity) into a ``trade_updates`` message, as
    Alpaca's trading stream reports orders it fills. :attr:`sent_ns` maps ``(client_order_id,
    filled_qty)`` to when its update left."""

    def __init__(self, trading: Any, server: AlpacaStreamServer, poll_s: float) -> None:
        self.trading, self.server, self.poll_s = trading, server, poll_s
        self.seen: dict[str, tuple[str, str]] = {}
        self.sent_ns: dict[tuple[str, str], int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.poll()

    def poll(self) -> int:
        """Send an update for every order that changed since the last poll; return how many."""
        changed = 0
        for order in self.trading.orders():
            key = (order["status"], order["filled_qty"])
            coid = order["client_order_id"]
            if self.seen.get(coid) == key:
                continue
            self.seen[coid] = key
            public = {k: v for k, v in order.items() if not k.startswith("_")}
            update: dict[str, Any] = {
                "event": _EVENTS.get(order["status"], order["status"]),
                "execution_id": f"{order['id']}-{order['filled_qty']}",
                "order": public,
                "timestamp": order.get("updated_at") or _now(),
            }
            if order["status"] in ("filled", "partially_filled"):
                update.update(price=order["filled_avg_price"], qty=order["filled_qty"])
            self.sent_ns[(coid, str(order["filled_qty"]))] = time.time_ns()
            self.server.send_trade_update(update)
            changed += 1
        return changed


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def main() -> None:
    """``python -m tests.support.alpaca_stream_server --replay 2010-03-01 --speed 60``:
    serve and replay the sample data's sessions from that date on, one after the other."""
    from pipelines import calendar

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port-file", default="", help="write the chosen port here")
    parser.add_argument("--replay", default="2010-03-01", help="session date of the sample data")
    parser.add_argument("--symbols", default="AAPL,MSFT,IBM")
    parser.add_argument("--speed", type=float, default=60.0)
    parser.add_argument("--key", default="test-key")
    parser.add_argument("--secret", default="test-secret")
    args = parser.parse_args()
    day = sample_day(args.symbols.split(","), date.fromisoformat(args.replay))
    with AlpacaStreamServer(args.key, args.secret) as server:
        print(f"stream server: {server.data_url} ({len(day)} bars, speed {args.speed})", flush=True)
        if args.port_file:
            with open(args.port_file, "w") as f:
                f.write(str(server.port))
        session = date.fromisoformat(args.replay)
        while True:
            while not server.subscribers():
                time.sleep(0.1)
            server.replay(day, args.speed)
            session = calendar.next_session(session)  # the next replay is the next day
            day = sample_day(args.symbols.split(","), session)


if __name__ == "__main__":
    main()
