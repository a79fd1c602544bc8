"""A local HTTP server speaking Alpaca's market-data protocol for ``GET /v2/stocks/bars``.

It serves bars built from the real sample data (:func:`sample_bars`) the way Alpaca does, so
alpaca-py's own client and models are exercised with no network:

- auth by the ``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY`` headers (403 ``{"message":
  "forbidden."}`` otherwise);
- ``symbols`` (comma-separated, several at once), ``timeframe`` (``1Day``, ``1Min``…),
  ``start``/``end`` (RFC 3339, inclusive), ``limit`` (≤ 10,000, default 1,000), ``page_token``;
- the answer ``{"bars": {SYM: [{"t","o","h","l","c","v","n","vw"}, …]}, "next_page_token": …}``,
  items ordered by symbol then time and paged across symbols; a symbol with no bars is absent;
- a malformed symbol is a 400 ``{"code": 40010001, "message": "invalid symbol: …"}``;
- ``GET /v1/corporate-actions`` (``symbols``, ``types``, ``start``/``end`` on ex-date,
  ``limit``, ``page_token``) answering ``{"corporate_actions": {"forward_splits": […],
  "cash_dividends": […], …}, "next_page_token": …}`` from :attr:`AlpacaDataServer.actions`.

Faults are queued in :attr:`AlpacaDataServer.faults` and consumed one per request, in order.
Every request is logged in :attr:`AlpacaDataServer.requests`.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pandas as pd

NEW_YORK = ZoneInfo("America/New_York")
_SYMBOL = re.compile(r"^[A-Z0-9./-]+$")


@dataclass
class Fault:
    """What to do instead of (or on top of) a normal answer, for one request."""

    status: int | None = None  # answer this status with ``body``
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # sleep before answering (the client may time out)
    truncate: bool = False  # cut the JSON in half (Content-Length matches the cut body)
    empty: bool = False  # 200 with an empty body
    reset: bool = False  # close the connection without answering
    repeat_token: bool = False  # next_page_token = a constant token, over and over
    extra_symbol: str | None = None  # add bars for a symbol nobody asked for


def _to_alpaca(frame: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in frame.itertuples(index=False):
        midnight = datetime(
            row.session_date.year, row.session_date.month, row.session_date.day, tzinfo=NEW_YORK
        )
        out.setdefault(row.symbol, []).append(
            {
                "t": midnight.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "o": row.open,
                "h": row.high,
                "l": row.low,
                "c": row.close,
                "v": int(row.volume),
                # The sample data has no trade count or VWAP; Alpaca always sends both.
                "n": 0,
                "vw": round((row.high + row.low + row.close) / 3, 4),
            }
        )
    return out


def sample_bars(symbols: list[str], start: date, end: date) -> dict[str, list[dict[str, Any]]]:
    """Daily bars of the sample data in Alpaca's JSON shape (``t`` = midnight New York)."""
    from pipelines.sources.sample import SampleSource

    return _to_alpaca(SampleSource().fetch_daily_bars(start, end, symbols))


HIGH_MINUTE, LOW_MINUTE = 100, 200  # the minutes that reach the day's high and low


def minute_bars(bar: dict[str, Any], day: date) -> list[dict[str, Any]]:
    """One-minute bars of session ``day`` (Alpaca's JSON, ``t`` = the minute's start) whose
    aggregate is exactly the daily ``bar`` (its volume floored to a multiple of the minutes):
    the first minute opens at the day's open, minute ``HIGH_MINUTE`` reaches its high,
    ``LOW_MINUTE`` its low, every minute closes at its close."""
    from pipelines import calendar

    hours = calendar.schedule(day, day)
    first = hours["open"][day].to_pydatetime().astimezone(ZoneInfo("UTC"))
    count = int((hours["close"][day] - hours["open"][day]).total_seconds() // 60)
    o, h, low, c = bar["o"], bar["h"], bar["l"], bar["c"]
    out = []
    for k in range(count):
        lo_, hi_, op = c, c, c
        if k == 0:
            op, lo_, hi_ = o, min(o, c), max(o, c)
        if k == HIGH_MINUTE:
            hi_ = h
        if k == LOW_MINUTE:
            lo_ = low
        t = (first + timedelta(minutes=k)).strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append({"t": t, "o": op, "h": hi_, "l": lo_, "c": c, "v": bar["v"] // count,
                    "n": 3, "vw": c})  # fmt: skip
    return out


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and left: expected in the fault tests


@cache
def _parse_t(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(token: str) -> int:
    return int(base64.urlsafe_b64decode(token.encode()).decode().split(":")[1])


class AlpacaDataServer:
    """``with AlpacaDataServer({"1Day": bars}) as server: client(url_override=server.url)``."""

    def __init__(
        self,
        bars: dict[str, dict[str, list[dict[str, Any]]]],
        key: str = "test-key",
        secret: str = "test-secret",
    ) -> None:
        self.bars = bars  # timeframe -> symbol -> bars in Alpaca's JSON shape
        self.key, self.secret = key, secret
        self.faults: list[Fault] = []
        self.requests: list[dict[str, Any]] = []
        self.reject_symbols: set[str] = set()  # answered 422 when asked for
        self.actions: dict[str, list[dict[str, Any]]] = {}  # "cash_dividends" -> [items]
        self.actions_fault: Fault | None = None  # answer for every /v1/corporate-actions call
        self.clock: str | None = None  # the Date header to send (RFC 7231), None: real time
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> AlpacaDataServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self.faults.pop(0) if self.faults else None

    def answer(self, params: dict[str, str], headers: dict[str, str]) -> tuple[int, dict, bytes]:
        """(status, headers, body) for one request, faults aside."""
        if headers.get("apca-api-key-id") != self.key or (
            headers.get("apca-api-secret-key") != self.secret
        ):
            return 403, {}, b'{"message": "forbidden."}'
        symbols = [s for s in params.get("symbols", "").split(",") if s]
        if not symbols:
            return 400, {}, b'{"code": 40010001, "message": "missing symbols"}'
        for symbol in symbols:
            if not _SYMBOL.match(symbol):
                body = {"code": 40010001, "message": f"invalid symbol: {symbol}"}
                return 400, {}, json.dumps(body).encode()
            if symbol in self.reject_symbols:
                body = {"code": 42210000, "message": f"invalid symbol: {symbol}"}
                return 422, {}, json.dumps(body).encode()
        limit = int(params.get("limit") or 1000)
        if not 1 <= limit <= 10_000:
            return 422, {}, b'{"code": 42210000, "message": "invalid limit"}'
        start = datetime.fromisoformat(params["start"]) if params.get("start") else None
        end = datetime.fromisoformat(params["end"]) if params.get("end") else None
        series = self.bars.get(params.get("timeframe", ""), {})
        items = []
        for symbol in sorted(symbols):
            for bar in series.get(symbol, []):
                t = _parse_t(bar["t"])
                if (start is None or t >= start) and (end is None or t <= end):
                    items.append((symbol, bar))
        offset = _offset(params["page_token"]) if params.get("page_token") else 0
        page = items[offset : offset + limit]
        out: dict[str, list] = {}
        for symbol, bar in page:
            out.setdefault(symbol, []).append(bar)
        more = offset + limit < len(items)
        body = {"bars": out, "next_page_token": _token(offset + limit) if more else None}
        return 200, {}, json.dumps(body).encode()

    def answer_actions(self, params: dict[str, str]) -> tuple[int, dict, bytes]:
        """``GET /v1/corporate-actions``: filtered by symbol, type and ex-date, paged."""
        symbols = set(params.get("symbols", "").split(","))
        types = {f"{t}s" for t in params.get("types", "").split(",") if t}
        start, end = params.get("start", ""), params.get("end", "9999-12-31")
        items = [
            (kind, item)
            for kind in sorted(self.actions)
            for item in self.actions[kind]
            if (not types or kind in types)
            and item["symbol"] in symbols
            and start <= item["ex_date"] <= end
        ]
        limit = int(params.get("limit") or 1000)
        offset = _offset(params["page_token"]) if params.get("page_token") else 0
        out: dict[str, list] = {}
        for kind, item in items[offset : offset + limit]:
            out.setdefault(kind, []).append(item)
        more = offset + limit < len(items)
        body = {
            "corporate_actions": out,
            "next_page_token": _token(offset + limit) if more else None,
        }
        return 200, {}, json.dumps(body).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def date_time_string(self, timestamp: float | None = None) -> str:
                return server.clock or super().date_time_string(timestamp)

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                parts = urlsplit(self.path)
                params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                with server._lock:
                    server.requests.append(
                        {"path": parts.path, "params": params, "headers": headers}
                    )
                if parts.path == "/v1/corporate-actions":
                    if server.actions_fault is not None:
                        fault = server.actions_fault
                        self._send(fault.status or 500, fault.headers, fault.body.encode())
                        return
                    self._send(*server.answer_actions(params))
                    return
                if parts.path != "/v2/stocks/bars":
                    self._send(404, {}, b'{"message": "not found"}')
                    return
                fault = server._next_fault()
                if fault and fault.delay_s:
                    time.sleep(fault.delay_s)
                if fault and fault.reset:
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault and fault.status is not None:
                    self._send(fault.status, fault.headers, fault.body.encode())
                    return
                status, extra, body = server.answer(params, headers)
                if fault and status == 200:
                    if fault.empty:
                        body = b""
                    elif fault.truncate:
                        body = body[: len(body) // 2]
                    elif fault.repeat_token or fault.extra_symbol:
                        doc = json.loads(body)
                        if fault.repeat_token:
                            doc["next_page_token"] = _token(0)
                        if fault.extra_symbol:
                            first = next(iter(doc["bars"].values()))
                            doc["bars"][fault.extra_symbol] = first
                        body = json.dumps(doc).encode()
                self._send(status, {**extra, **(fault.headers if fault else {})}, body)

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        return Handler
