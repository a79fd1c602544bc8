"""A local HTTP server answering the Yahoo Finance URLs yfinance 1.7 calls for ``Ticker.history``.

``YahooSource(url=server.url)`` (the ``YAHOO_DATA_URL`` setting) sends every request of its
session to this server, path and query unchanged, so yfinance itself runs unmodified:

- ``GET /`` (``https://fc.yahoo.com``, the cookie) answers 200 with an empty body;
- ``GET /v1/test/getcrumb`` answers a crumb;
- ``GET /v8/finance/chart/{SYMBOL}?range=1d…`` (the time zone) and ``…?period1=…`` (the
  data) answer the symbol's chart JSON (:attr:`YahooChartServer.charts`); a symbol it does
  not know gets Yahoo's 404 ``{"chart": {"result": null, "error": {"code": "Not Found", …}}}``.

:attr:`YahooChartServer.bodies` replaces a symbol's *data* answer with exact bytes (and a
status): the corpus tests send NaN literals, nulls, duplicates, text prices this way.
:attr:`YahooChartServer.clock` sets the ``Date`` header (the vendor's clock). Every request is
logged in :attr:`YahooChartServer.requests`.

Chart JSON is built as Yahoo sends it (:func:`chart_document`): daily bars stamped at the
session's *open* (epoch seconds), OHLC and volume restated for later splits, ``adjclose``
adjusted for splits and dividends, split and dividend events.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

from pipelines import calendar

NOT_FOUND = {
    "chart": {
        "result": None,
        "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
    }
}
Item = dict[str, Any]  # one bar as Yahoo sends it: {"t": epoch, "o", "h", "l", "c", "v"}


def session_open(day: date) -> int:
    """Epoch seconds of ``day``'s NYSE open: the stamp Yahoo gives a daily bar."""
    return int(calendar.schedule(day, day)["open"][day].timestamp())


def day_of(stamp: int) -> date:
    """The New York date of an epoch stamp."""
    return datetime.fromtimestamp(stamp, UTC).astimezone(ZoneInfo(calendar.EXCHANGE_TZ)).date()


def sample_items(symbols: list[str], start: date, end: date) -> dict[str, list[Item]]:
    """The sample's daily bars of ``[start, end]`` as Yahoo items (no splits: as traded)."""
    from pipelines.sources.sample import SampleSource

    bars = SampleSource().fetch_daily_bars(start, end, symbols)
    opens = calendar.schedule(start, end)["open"]
    out: dict[str, list[Item]] = {}
    for row in bars.sort_values(["symbol", "ts"]).itertuples(index=False):
        out.setdefault(row.symbol, []).append(
            {"t": int(opens[row.session_date].timestamp()), "o": float(row.open),
             "h": float(row.high), "l": float(row.low), "c": float(row.close),
             "v": int(row.volume)}
        )  # fmt: skip
    return out


def chart_document(
    symbol: str,
    items: list[Item],
    events: dict[str, Any] | None = None,
    adjclose: list[Any] | None = None,
) -> dict[str, Any]:
    """Yahoo's ``/v8/finance/chart`` answer for ``items``, values exactly as given (nulls,
    text, NaN included); a key missing from an item is sent as null."""
    quote = {
        name: [item.get(key) for item in items]
        for key, name in (("o", "open"), ("h", "high"), ("l", "low"), ("c", "close"),
                          ("v", "volume"))
    }  # fmt: skip
    stamps = [item.get("t") for item in items]
    last = next((t for t in reversed(stamps) if isinstance(t, int)), 0)
    meta = {
        "currency": "USD",
        "symbol": symbol,
        "exchangeName": "NYQ",
        "fullExchangeName": "NYSE",
        "instrumentType": "EQUITY",
        "firstTradeDate": -252322200,
        "regularMarketTime": last,
        "hasPrePostMarketData": True,
        "gmtoffset": -14400,
        "timezone": "EDT",
        "exchangeTimezoneName": "America/New_York",
        "regularMarketPrice": quote["close"][-1] if items else None,
        "priceHint": 2,
        "dataGranularity": "1d",
        "range": "",
        "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
    }
    result: dict[str, Any] = {
        "meta": meta,
        "timestamp": stamps,
        "indicators": {
            "quote": [quote],
            "adjclose": [{"adjclose": quote["close"] if adjclose is None else adjclose}],
        },
    }
    if events:
        result["events"] = events
    return {"chart": {"result": [result], "error": None}}


@dataclass
class Chart:
    """One symbol's series: sample bars of ``[start, end]`` plus events (as traded)."""

    symbol: str
    start: date
    end: date
    splits: dict[date, float] = field(default_factory=dict)  # new shares per old
    dividends: dict[date, float] = field(default_factory=dict)  # USD per share, as paid

    def json(self) -> dict[str, Any]:
        items = sample_items([self.symbol], self.start, self.end)[self.symbol]
        days = [day_of(item["t"]) for item in items]

        def later(day: date) -> float:  # splits strictly after ``day``
            ratio = 1.0
            for split_day, r in self.splits.items():
                if split_day > day:
                    ratio *= r
            return ratio

        sent = [
            {**item, **{k: item[k] / later(d) for k in "ohlc"}, "v": int(item["v"] * later(d))}
            for item, d in zip(items, days, strict=True)
        ]
        # CRSP-style adjclose, computed the plain way: walk back from the last bar.
        adj, factor = [0.0] * len(days), 1.0
        for i in range(len(days) - 1, -1, -1):
            adj[i] = sent[i]["c"] * factor
            if days[i] in self.dividends and i > 0:
                cash = self.dividends[days[i]] / later(days[i])
                factor *= 1 - cash / sent[i - 1]["c"]
        stamps = {d: item["t"] for d, item in zip(days, items, strict=True)}
        events = {
            "dividends": {
                str(stamps[d]): {"amount": a / later(d), "date": stamps[d]}
                for d, a in self.dividends.items()
            },
            "splits": {
                str(stamps[d]): {
                    "date": stamps[d],
                    "numerator": r,
                    "denominator": 1.0,
                    "splitRatio": f"{r:g}:1",
                }
                for d, r in self.splits.items()
            },
        }
        return chart_document(self.symbol, sent, events, adj)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up: not the test's concern


class YahooChartServer:
    """``with YahooChartServer({"IBM": chart_json}) as yahoo: YahooSource(url=yahoo.url)``."""

    def __init__(self, charts: dict[str, dict[str, Any]] | None = None) -> None:
        self.charts = dict(charts or {})  # symbol -> chart JSON (time zone and data answers)
        self.bodies: dict[str, tuple[int, str]] = {}  # symbol -> (status, body) of its data
        self.clock: str | None = None  # the Date header (RFC 7231); None: the real time
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> YahooChartServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def data_requests(self) -> list[str]:
        """The symbols whose data (``period1=…``) was asked for, in order."""
        return [r["symbol"] for r in self.requests if "period1" in r["params"]]

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, str]:
        if path == "/":
            return 200, ""
        if path == "/v1/test/getcrumb":
            return 200, "test-crumb"
        if not path.startswith("/v8/finance/chart/"):
            return 404, ""
        symbol = unquote(path.rsplit("/", 1)[-1]).upper()
        if "period1" in params and symbol in self.bodies:
            return self.bodies[symbol]
        if symbol not in self.charts:
            return 404, json.dumps(NOT_FOUND)
        return 200, json.dumps(self.charts[symbol])

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Yahoo
            disable_nagle_algorithm = True  # headers and body leave at once (no 40 ms stalls)

            def log_message(self, *args: object) -> None:
                pass

            def date_time_string(self, timestamp: float | None = None) -> str:
                return server.clock or super().date_time_string(timestamp)

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                parts = urlsplit(self.path)
                params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                symbol = unquote(parts.path.rsplit("/", 1)[-1]).upper()
                with server._lock:
                    server.requests.append({"path": parts.path, "params": params,
                                            "symbol": symbol})  # fmt: skip
                status, body = server.answer(parts.path, params)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
