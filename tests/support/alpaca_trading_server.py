"""A stateful local Alpaca Trading API server for tests and benchmarks (127.0.0.1, stdlib only).

It speaks the part of Alpaca's Trading API v2 the adapter uses, with the JSON shapes alpaca-py
0.44's models parse (``Order``, ``Position``, ``TradeAccount``) and Alpaca's error answers:

- ``POST /v2/orders`` — 422 ``{"code":40010001,"message":"client_order_id must be unique"}``
  for a known client id (kept unique forever, also after cancellation), 422 40010001 for bad
  parameters, 422 42210000 for an unknown asset, 403 40310000 for insufficient buying power or
  insufficient shares to sell;
- ``GET /v2/orders/{id}``, ``GET /v2/orders:by_client_order_id`` (404 40410000 when unknown),
  ``GET /v2/orders`` (``status`` open|closed|all, ``limit`` ≤ 500, ``after``/``until``,
  ``direction``, ``symbols``), ``DELETE /v2/orders/{id}`` (204; 422 when not cancelable);
- ``GET /v2/positions``, ``GET /v2/account``;
- 401 without ``APCA-API-KEY-ID``/``APCA-API-SECRET-KEY``; every answer carries
  ``X-RateLimit-Limit/Remaining/Reset`` and a real per-minute limit answers 429 past it.

Faults are scripted per request: :meth:`AlpacaTradingServer.inject` queues :class:`Fault`\\ s,
each consumed by the next request it matches (method and path prefix). A fault may first let
the request take effect (``store``: the order is stored), then wait (``delay``: a slow answer,
a client timeout), then answer with an error status instead of the real answer (429, 500,
504, ...) or SIGKILL the client process that sent the request (``kill_client``: a crash after
the broker stored the order, before the answer arrived).

Fills happen only when asked: :meth:`fill` fills an order partly or wholly at a price, moving
cash and positions as Alpaca would.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

OPEN = {
    "new",
    "accepted",
    "pending_new",
    "partially_filled",
    "accepted_for_bidding",
    "pending_cancel",
    "pending_replace",
    "held",
}
TIME_IN_FORCE = {"day", "gtc", "opg", "cls", "ioc", "fok"}
TYPES = {"market", "limit", "stop", "stop_limit", "trailing_stop"}
ACCOUNT_ID = "904837e3-3b76-47ec-b432-046db621571b"


@dataclass
class Fault:
    """One scripted misbehaviour, used by the next request matching ``method`` and ``path``
    (and ``client_order_id``, when given), after letting ``skip`` matching requests through.

    ``status`` None answers normally (after ``delay``); ``store`` lets the request take effect
    before the fault acts (a 504 or a kill after the order was stored).
    """

    status: int | None = None
    store: bool = False
    delay: float = 0.0
    kill_client: bool = False
    method: str = "POST"
    path: str = "/v2/orders"
    client_order_id: str | None = None
    skip: int = 0
    body: dict[str, Any] | None = None
    headers: dict[str, str] | None = None  # extra answer headers, e.g. {"Retry-After": "3"}
    # Called (under the server's lock) when the fault is used, before the request is served:
    # e.g. a fill that lands between two of the client's reads.
    before: Callable[[], object] | None = None

    def matches(self, method: str, path: str, coid: str | None) -> bool:
        return (
            method == self.method
            and path.startswith(self.path)
            and (self.client_order_id is None or coid == self.client_order_id)
        )


ERROR_BODIES: dict[int, Any] = {
    403: {"code": 40310000, "message": "forbidden"},
    404: {"code": 40410000, "message": "resource not found"},
    422: {"code": 40010001, "message": "invalid request"},
    429: {"code": 42910000, "message": "rate limit exceeded"},
    500: {"code": 50010000, "message": "internal server error occurred"},
    503: {"code": 50310000, "message": "service unavailable"},
    # Gateways answer 502/504 with HTML, not JSON.
    502: "<html><body><h1>502 Bad Gateway</h1></body></html>",
    504: "<html><body><h1>504 Gateway Time-out</h1></body></html>",
}


class _Listener(ThreadingHTTPServer):
    # socketserver's backlog of 5 drops the SYNs of a burst of 1,000 concurrent orders, and
    # each dropped SYN costs the client a 1 s retransmit: a real gateway queues them.
    request_queue_size = 1024
    daemon_threads = True


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _num(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


class _Reply(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}


@dataclass
class _State:
    cash: Decimal
    prices: dict[str, Decimal]
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # by broker id
    by_client_id: dict[str, str] = field(default_factory=dict)
    positions: dict[str, list[Decimal]] = field(default_factory=dict)  # symbol -> [qty, cost]
    seq: int = 0


class AlpacaTradingServer:
    """``with AlpacaTradingServer() as s: TradingClient(key, secret, url_override=s.url)``."""

    def __init__(
        self,
        cash: float = 1_000_000.0,
        prices: dict[str, float] | None = None,
        default_price: float | None = 100.0,
        rate_limit_per_minute: int = 100_000,
        api_key: str = "test-key",
        secret_key: str = "test-secret",
    ) -> None:
        self.api_key, self.secret_key = api_key, secret_key
        self.default_price = None if default_price is None else Decimal(str(default_price))
        self.rate_limit = rate_limit_per_minute
        self._state = _State(
            Decimal(str(cash)), {k: Decimal(str(v)) for k, v in (prices or {}).items()}
        )
        self._faults: deque[Fault] = deque()
        self._lock = threading.RLock()
        self._window: deque[float] = deque()
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status answered)
        self.created = Counter[str]()  # client_order_id -> orders created (must stay <= 1)
        self._httpd = _Listener(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    # ----------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> AlpacaTradingServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> AlpacaTradingServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- scripting
    def inject(self, *faults: Fault) -> None:
        """Queue faults; each is used once, by the next request it matches."""
        with self._lock:
            self._faults.extend(faults)

    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def set_price(self, symbol: str, price: float) -> None:
        with self._lock:
            self._state.prices[symbol] = Decimal(str(price))

    def reset(self, cash: float | None = None) -> None:
        """Forget every order, position, fault and request (a fresh paper account)."""
        with self._lock:
            self._state = _State(
                Decimal(str(cash)) if cash is not None else self._state.cash, self._state.prices
            )
            self._faults.clear()
            self._window.clear()
            self.requests.clear()
            self.created.clear()

    def orders(self) -> list[dict[str, Any]]:
        """Every order the broker holds (copies), oldest first."""
        with self._lock:
            return [dict(o) for o in sorted(self._state.orders.values(), key=lambda o: o["_seq"])]

    def order_by_client_id(self, client_order_id: str) -> dict[str, Any] | None:
        with self._lock:
            oid = self._state.by_client_id.get(client_order_id)
            return dict(self._state.orders[oid]) if oid else None

    def set_status(self, client_order_id: str, status: str) -> None:
        """Move an order to ``status`` as the venue would (e.g. ``expired``, ``rejected``)."""
        with self._lock:
            order = self._state.orders[self._state.by_client_id[client_order_id]]
            order["status"], order["updated_at"] = status, _now()
            stamp = {"expired": "expired_at", "canceled": "canceled_at", "rejected": "failed_at"}
            if status in stamp:
                order[stamp[status]] = order["updated_at"]

    def fill(
        self,
        client_order_id: str | None = None,
        qty: float | None = None,
        price: float | None = None,
    ) -> int:
        """Fill open orders (one, or all when ``client_order_id`` is None) by ``qty`` shares
        (default: what is left) at ``price`` (default: the symbol's price); return fills made."""
        with self._lock:
            if client_order_id is not None:
                targets = [self._state.orders[self._state.by_client_id[client_order_id]]]
            else:
                targets = [o for o in self._state.orders.values() if o["status"] in OPEN]
            made = 0
            for order in sorted(targets, key=lambda o: o["_seq"]):
                if order["status"] not in OPEN:
                    continue
                left = Decimal(order["qty"]) - Decimal(order["filled_qty"])
                take = min(left, Decimal(str(qty))) if qty is not None else left
                if take <= 0:
                    continue
                px = Decimal(str(price)) if price is not None else self._price(order["symbol"])
                assert px is not None
                self._apply_fill(order, take, px)
                made += 1
            return made

    # ----------------------------------------------------------------- state changes
    def _price(self, symbol: str) -> Decimal | None:
        return self._state.prices.get(symbol, self.default_price)

    def _apply_fill(self, order: dict[str, Any], take: Decimal, px: Decimal) -> None:
        filled = Decimal(order["filled_qty"])
        avg = Decimal(order["filled_avg_price"] or 0)
        new_filled = filled + take
        order["filled_avg_price"] = _num((avg * filled + px * take) / new_filled)
        order["filled_qty"] = _num(new_filled)
        order["updated_at"] = _now()
        if new_filled == Decimal(order["qty"]):
            order["status"], order["filled_at"] = "filled", order["updated_at"]
        else:
            order["status"] = "partially_filled"
        sign = 1 if order["side"] == "buy" else -1
        pos = self._state.positions.setdefault(order["symbol"], [Decimal(0), Decimal(0)])
        if sign > 0:
            pos[1] += take * px
        elif pos[0]:
            pos[1] -= pos[1] * take / pos[0]
        pos[0] += sign * take
        self._state.cash -= sign * take * px
        if pos[0] == 0:
            del self._state.positions[order["symbol"]]

    def _buying_power(self) -> Decimal:
        reserved = sum(
            (Decimal(o["qty"]) - Decimal(o["filled_qty"])) * (self._price(o["symbol"]) or 0)
            for o in self._state.orders.values()
            if o["status"] in OPEN and o["side"] == "buy"
        )
        return self._state.cash - Decimal(reserved)

    def _create_order(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _Reply(422, {"code": 40010001, "message": "request body format is invalid"})
        coid = body.get("client_order_id") or str(uuid.uuid4())
        if len(coid) > 128:
            raise _Reply(422, {"code": 40010001, "message": "client_order_id is too long"})
        if coid in self._state.by_client_id:
            raise _Reply(422, {"code": 40010001, "message": "client_order_id must be unique"})
        symbol = body.get("symbol")
        if not symbol:
            raise _Reply(422, {"code": 40010001, "message": "symbol is required"})
        side, otype, tif = body.get("side"), body.get("type"), body.get("time_in_force")
        if side not in ("buy", "sell"):
            raise _Reply(422, {"code": 40010001, "message": "invalid side"})
        if otype not in TYPES:
            raise _Reply(422, {"code": 40010001, "message": "invalid order type"})
        if tif not in TIME_IN_FORCE:
            raise _Reply(422, {"code": 40010001, "message": "invalid time_in_force"})
        try:
            qty = Decimal(str(body.get("qty")))
        except InvalidOperation:
            raise _Reply(422, {"code": 40010001, "message": "qty must be a number"}) from None
        if not qty.is_finite() or qty <= 0:
            raise _Reply(422, {"code": 40010001, "message": "qty must be > 0"})
        if otype == "limit" and body.get("limit_price") is None:
            raise _Reply(422, {"code": 40010001, "message": "limit orders require limit_price"})
        price = self._price(symbol)
        if price is None:
            raise _Reply(422, {"code": 42210000, "message": f'asset "{symbol}" not found'})
        if side == "buy" and qty * price > self._buying_power():
            raise _Reply(403, {"code": 40310000, "message": "insufficient buying power"})
        if side == "sell":
            held = self._state.positions.get(symbol, [Decimal(0)])[0]
            pending = sum(
                Decimal(o["qty"]) - Decimal(o["filled_qty"])
                for o in self._state.orders.values()
                if o["symbol"] == symbol and o["side"] == "sell" and o["status"] in OPEN
            )
            if qty > held - pending:
                raise _Reply(
                    403,
                    {
                        "code": 40310000,
                        "message": (
                            f"insufficient qty available for order (requested: {_num(qty)}, "
                            f"available: {_num(held - pending)})"
                        ),
                    },
                )
        now = _now()
        self._state.seq += 1
        order = {
            "id": str(uuid.uuid4()),
            "client_order_id": coid,
            "created_at": now,
            "updated_at": now,
            "submitted_at": now,
            "filled_at": None,
            "expired_at": None,
            "expires_at": None,
            "canceled_at": None,
            "failed_at": None,
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": str(uuid.uuid5(uuid.NAMESPACE_OID, symbol)),
            "symbol": symbol,
            "asset_class": "us_equity",
            "notional": None,
            "qty": _num(qty),
            "filled_qty": "0",
            "filled_avg_price": None,
            "order_class": "",
            "order_type": otype,
            "type": otype,
            "side": side,
            "position_intent": "buy_to_open" if side == "buy" else "sell_to_close",
            "time_in_force": tif,
            "limit_price": None if body.get("limit_price") is None else str(body["limit_price"]),
            "stop_price": None,
            "status": "accepted",
            "extended_hours": False,
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
            "_seq": self._state.seq,
        }
        self._state.orders[order["id"]] = order
        self._state.by_client_id[coid] = order["id"]
        self.created[coid] += 1
        return order

    def _positions(self) -> list[dict[str, Any]]:
        out = []
        for symbol, (qty, cost) in sorted(self._state.positions.items()):
            px = self._price(symbol) or Decimal(0)
            avg = cost / qty if qty else Decimal(0)
            out.append(
                {
                    "asset_id": str(uuid.uuid5(uuid.NAMESPACE_OID, symbol)),
                    "symbol": symbol,
                    "exchange": "NYSE",
                    "asset_class": "us_equity",
                    "asset_marginable": True,
                    "avg_entry_price": _num(avg),
                    "qty": _num(qty),
                    "side": "long" if qty > 0 else "short",
                    "market_value": _num(qty * px),
                    "cost_basis": _num(cost),
                    "unrealized_pl": _num(qty * px - cost),
                    "unrealized_plpc": "0",
                    "unrealized_intraday_pl": "0",
                    "unrealized_intraday_plpc": "0",
                    "current_price": _num(px),
                    "lastday_price": _num(px),
                    "change_today": "0",
                    "qty_available": _num(qty),
                }
            )
        return out

    def _account(self) -> dict[str, Any]:
        long_value = sum(
            (q * (self._price(s) or 0) for s, (q, _) in self._state.positions.items()),
            Decimal(0),
        )
        equity = self._state.cash + long_value
        return {
            "id": ACCOUNT_ID,
            "account_number": "PA3TESTLOCAL",
            "status": "ACTIVE",
            "crypto_status": "ACTIVE",
            "currency": "USD",
            "buying_power": _num(self._buying_power()),
            "regt_buying_power": _num(self._buying_power()),
            "daytrading_buying_power": "0",
            "non_marginable_buying_power": _num(self._buying_power()),
            "cash": _num(self._state.cash),
            "accrued_fees": "0",
            "pending_transfer_in": "0",
            "portfolio_value": _num(equity),
            "pattern_day_trader": False,
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "created_at": "2024-01-02T14:30:00Z",
            "trade_suspended_by_user": False,
            "multiplier": "1",
            "shorting_enabled": False,
            "equity": _num(equity),
            "last_equity": _num(equity),
            "long_market_value": _num(long_value),
            "short_market_value": "0",
            "initial_margin": "0",
            "maintenance_margin": "0",
            "last_maintenance_margin": "0",
            "sma": "0",
            "daytrade_count": 0,
        }

    # ----------------------------------------------------------------- routing
    def _rate_headers(self) -> tuple[bool, dict[str, str]]:
        now = time.monotonic()
        while self._window and now - self._window[0] >= 60:
            self._window.popleft()
        limited = len(self._window) >= self.rate_limit
        if not limited:
            self._window.append(now)
        reset = int(time.time() + (60 - (now - self._window[0]) if self._window else 60))
        return limited, {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(0, self.rate_limit - len(self._window))),
            "X-RateLimit-Reset": str(reset),
        }

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        state = self._state
        if method == "POST" and path == "/v2/orders":
            return 200, self._create_order(body)
        if method == "GET" and path == "/v2/orders:by_client_order_id":
            oid = state.by_client_id.get((query.get("client_order_id") or [""])[0])
            if oid is None:
                raise _Reply(404, {"code": 40410000, "message": "order not found"})
            return 200, state.orders[oid]
        if method == "GET" and path == "/v2/orders":
            return 200, self._list_orders(query)
        match = re.fullmatch(r"/v2/orders/([0-9a-fA-F-]{36})", path)
        if match and method in ("GET", "DELETE"):
            order = state.orders.get(match.group(1))
            if order is None:
                raise _Reply(404, {"code": 40410000, "message": "order not found"})
            if method == "GET":
                return 200, order
            if order["status"] not in OPEN:
                raise _Reply(422, {"code": 42210000, "message": "order is not cancelable"})
            order["status"], order["canceled_at"] = "canceled", _now()
            order["updated_at"] = order["canceled_at"]
            return 204, None
        if method == "GET" and path == "/v2/positions":
            return 200, self._positions()
        if method == "GET" and path == "/v2/account":
            return 200, self._account()
        raise _Reply(404, {"code": 40410000, "message": f"endpoint not found: {method} {path}"})

    def _list_orders(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        status = (query.get("status") or ["open"])[0]
        limit = min(int((query.get("limit") or ["50"])[0]), 500)
        direction = (query.get("direction") or ["desc"])[0]
        after, until = (query.get("after") or [None])[0], (query.get("until") or [None])[0]
        symbols = set(",".join(query.get("symbols", [])).split(",")) - {""}
        rows = sorted(
            self._state.orders.values(), key=lambda o: o["_seq"], reverse=direction == "desc"
        )
        out = []
        for order in rows:
            is_open = order["status"] in OPEN
            if (status == "open" and not is_open) or (status == "closed" and is_open):
                continue
            if symbols and order["symbol"] not in symbols:
                continue
            stamp = datetime.fromisoformat(order["submitted_at"])
            if after and stamp <= datetime.fromisoformat(after):
                continue
            if until and stamp >= datetime.fromisoformat(until):
                continue
            out.append(order)
            if len(out) == limit:
                break
        return out

    def _next_fault(self, method: str, path: str, coid: str | None) -> Fault | None:
        for i, fault in enumerate(self._faults):
            if fault.matches(method, path, coid):
                if fault.skip:
                    fault.skip -= 1
                    return None
                del self._faults[i]
                return fault
        return None

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parsed = urlparse(handler.path)
        path, query = parsed.path, parse_qs(parsed.query)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        fault: Fault | None = None
        reply: _Reply | None = None
        with self._lock:
            limited, headers = self._rate_headers()
            try:
                if (
                    handler.headers.get("APCA-API-KEY-ID") != self.api_key
                    or handler.headers.get("APCA-API-SECRET-KEY") != self.secret_key
                ):
                    raise _Reply(401, {"code": 40110000, "message": "request is not authorized"})
                if limited:
                    raise _Reply(429, ERROR_BODIES[429])
                fault = self._next_fault(method, path, self._coid_of(raw, query))
                if fault is not None and fault.before is not None:
                    fault.before()
                if fault is not None and not fault.store and fault.status is not None:
                    raise _Reply(
                        fault.status,
                        fault.body or ERROR_BODIES.get(fault.status, ""),
                        fault.headers,
                    )
                if fault is not None and not fault.store and fault.delay:
                    reply = None  # a slow answer: wait outside the lock, then do the request
                else:
                    reply = _Reply(*self._route(method, path, query, self._body(raw)))
            except _Reply as r:
                reply = r
        if fault is not None and reply is None:  # slow answer: wait, then do the request
            time.sleep(fault.delay)
            with self._lock:
                try:
                    reply = _Reply(*self._route(method, path, query, self._body(raw)))
                except _Reply as r:
                    reply = r
        elif fault is not None and fault.store:
            if fault.kill_client:
                _kill_peer(handler.client_address)
            time.sleep(fault.delay)
            if fault.status is not None:
                reply = _Reply(fault.status, fault.body or ERROR_BODIES.get(fault.status, ""))
        assert reply is not None
        with self._lock:
            self.requests.append((method, path, reply.status))
        self._send(handler, reply.status, reply.body, {**headers, **reply.headers})

    @staticmethod
    def _coid_of(raw: bytes, query: dict[str, list[str]]) -> str | None:
        if "client_order_id" in query:
            return query["client_order_id"][0]
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return None
        return body.get("client_order_id") if isinstance(body, dict) else None

    @staticmethod
    def _body(raw: bytes) -> Any:
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise _Reply(
                422, {"code": 40010001, "message": "request body format is invalid"}
            ) from None

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str]
    ) -> None:
        if body is None:
            data, ctype = b"", "application/json"
        elif isinstance(body, str):
            data, ctype = body.encode(), "text/html"
        else:
            public = _public(body)
            data, ctype = json.dumps(public).encode(), "application/json; charset=UTF-8"
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", ctype)
            handler.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                handler.send_header(key, value)
            handler.end_headers()
            if data:
                handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout) or was killed

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle on, the body waits for the
            # client's delayed ACK (~40 ms a request on Linux).
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_POST(self) -> None:
                server._handle(self, "POST")

            def do_DELETE(self) -> None:
                server._handle(self, "DELETE")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _public(body: Any) -> Any:
    if isinstance(body, list):
        return [_public(b) for b in body]
    if isinstance(body, dict):
        return {k: v for k, v in body.items() if not k.startswith("_")}
    return body


def _kill_peer(client_address: tuple[str, int] | Any) -> None:
    """SIGKILL the local process that owns the client end of this connection."""
    import psutil

    port = client_address[1]
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.pid and conn.pid != os.getpid():
            os.kill(conn.pid, signal.SIGKILL)
            return
    raise RuntimeError(f"no local process owns the client port {port}")


def main() -> None:
    """Serve in its own process (benchmarks: no GIL shared with the client); prints the URL,
    stops when stdin closes. ``--prices FILE`` is a JSON object {symbol: price}.

    ``--stream``: also serve the local Alpaca stream server wired to this venue (every order
    change becomes a ``trade_updates`` message, polled every ``--poll-ms``); its trading
    stream URL is printed on a second line. Commands on stdin, one a line, each answered with
    one line: ``fill`` (fill every open order; prints how many), ``listeners`` (TradingStream
    clients listening), ``filled_at`` (JSON {client_order_id: filled_at} of filled orders).
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="local Alpaca Trading API server")
    parser.add_argument("--cash", type=float, default=1_000_000.0)
    parser.add_argument("--prices", help="JSON file {symbol: price}")
    parser.add_argument("--default-price", type=float, default=100.0, help="<= 0: none")
    parser.add_argument("--rate-limit", type=int, default=100_000)
    parser.add_argument("--stream", action="store_true", help="serve trade_updates too")
    parser.add_argument("--poll-ms", type=float, default=2.0)
    args = parser.parse_args()
    prices = json.loads(Path(args.prices).read_text()) if args.prices else None
    default = args.default_price if args.default_price > 0 else None
    with AlpacaTradingServer(args.cash, prices, default, args.rate_limit) as server:
        print(server.url, flush=True)
        if not args.stream:
            sys.stdin.read()
            return
        from tests.support.alpaca_stream_server import AlpacaStreamServer

        with AlpacaStreamServer(trading=server, poll_s=args.poll_ms / 1000) as stream:
            print(stream.trading_url, flush=True)
            for line in sys.stdin:
                print(json.dumps(_command(server, stream, line.strip())), flush=True)


def _command(server: AlpacaTradingServer, stream: Any, command: str) -> Any:
    if command == "fill":
        return server.fill()
    if command == "listeners":
        return stream.trading_listeners()
    if command == "filled_at":
        return {o["client_order_id"]: o["filled_at"] for o in server.orders() if o["filled_at"]}
    return {"error": f"unknown command {command!r}"}


if __name__ == "__main__":
    main()
