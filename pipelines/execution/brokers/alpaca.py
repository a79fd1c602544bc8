"""The Alpaca broker: the Broker contract on alpaca-py's ``TradingClient``.

Paper trading unless ``TRADING_MODE=live`` and ``LIVE_TRADING_CONFIRMED=true`` (Settings refuses
the first without the second). ``ALPACA_BASE_URL`` overrides the endpoint (a proxy, or the local
test server). Keys are ``SecretStr`` and never logged.

Errors are sorted by what a retry may do:

- 422 code 40010001 for a client id Alpaca already holds (a 504 after Alpaca stored the order,
  then alpaca-py's own retry, or our rerun) is not an error: the order is looked up by client
  id and returned. Other 422s (bad parameters) and 403 (buying power, shares) are
  :class:`PermanentBrokerError`: the order goes to the dead-letter table.
- 429, 500, 502, 503, 504, timeouts and lost connections are :class:`TransientBrokerError`:
  the request may or may not have taken effect, so the caller asks by client id before any
  new send. Reads (lookups, positions, account) are retried here with exponential backoff,
  lengthened to a 429's ``Retry-After``, within ``BROKER_MAX_WAIT_SECONDS`` in total
  (:mod:`pipelines.execution.backoff`).

Positions and cash for sizing come from :meth:`AlpacaBroker.get_account_snapshot`: Alpaca
has no single call for both, so positions are read before and after the account and the
three reads are kept only when the two position reads agree (a fill between them changes
the positions); otherwise they are read again.

Every HTTP request, alpaca-py's internal retries included, first takes a token from a token
bucket (``BROKER_RATE_LIMIT_PER_MINUTE``, Alpaca allows about 200 a minute). alpaca-py retries
429/504 itself ``ALPACA_SDK_RETRY_ATTEMPTS`` times, ``ALPACA_SDK_RETRY_WAIT_SECONDS`` apart (its
defaults: 3 and 3 s; ours: 0, since our retry asks the broker first). The client exposes these
only as attributes (``_retry``, ``_retry_wait``) and its session sets no timeout, so both are
set here on the constructed client.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.models import Order
from alpaca.trading.requests import GetOrdersRequest, MarketOrderRequest

from pipelines.config import Settings
from pipelines.errors import BrokerError, ConfigurationError
from pipelines.execution.backoff import BrokerBackoff, parse_retry_after
from pipelines.execution.brokers.base import (
    AccountSnapshot,
    BrokerOrder,
    OrderIntent,
    PermanentBrokerError,
    TransientBrokerError,
)
from pipelines.ratelimit import TokenBucket

log = logging.getLogger(__name__)

NAME = "alpaca"
DUPLICATE_CLIENT_ID = 40010001
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
PERMANENT_STATUS = frozenset({403, 422})
PAGE = 500  # Alpaca's maximum for GET /v2/orders
SNAPSHOT_ATTEMPTS = 5

# Alpaca's order statuses in the ledger's words (see pipelines/execution/ledger.py).
STATUS_MAP = {
    "new": "accepted",
    "accepted": "accepted",
    "pending_new": "accepted",
    "accepted_for_bidding": "accepted",
    "held": "accepted",
    "calculated": "accepted",
    "pending_review": "accepted",
    "pending_replace": "accepted",
    "pending_cancel": "accepted",
    "done_for_day": "accepted",
    "stopped": "accepted",
    "suspended": "accepted",
    "partially_filled": "partially_filled",
    "filled": "filled",
    "canceled": "cancelled",
    "replaced": "cancelled",
    "expired": "expired",
    "rejected": "rejected",
}

T = TypeVar("T")


class _LimitedSession(requests.Session):
    """A requests session with a default timeout that takes a rate-limit token per request."""

    def __init__(self, limiter: TokenBucket, timeout: float) -> None:
        super().__init__()
        self._limiter, self._timeout = limiter, timeout

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("timeout", self._timeout)
        self._limiter.acquire()
        return super().request(method, url, *args, **kwargs)


def map_status(alpaca_status: str) -> str:
    """The ledger's status for an Alpaca order status (unknown ones fail closed)."""
    try:
        return STATUS_MAP[alpaca_status]
    except KeyError:
        raise BrokerError(
            f"Alpaca order status {alpaca_status!r} is unknown to the ledger; "
            "add it to STATUS_MAP in pipelines/execution/brokers/alpaca.py"
        ) from None


def _error_code(exc: APIError) -> int | None:
    try:
        return int(json.loads(str(exc))["code"])
    except (ValueError, KeyError, TypeError):
        return None


def _error_message(exc: APIError) -> str:
    try:
        return str(json.loads(str(exc))["message"])
    except (ValueError, KeyError, TypeError):
        return str(exc)[:200]


def to_broker_order(order: Order) -> BrokerOrder:
    status = order.status.value if hasattr(order.status, "value") else str(order.status)
    side = order.side.value if order.side is not None else ""
    if side not in ("buy", "sell"):
        raise BrokerError(f"Alpaca order {order.id} has side {side!r}; the ledger trades stocks")
    return BrokerOrder(
        broker_order_id=str(order.id),
        client_order_id=order.client_order_id,
        symbol=order.symbol or "",
        side=side,  # type: ignore[arg-type]
        qty=Decimal(str(order.qty or 0)),
        status=map_status(status),
        filled_qty=Decimal(str(order.filled_qty or 0)),
        filled_avg_price=None if order.filled_avg_price is None else float(order.filled_avg_price),
        broker_status=status,
        updated_at=order.updated_at,
    )


class AlpacaBroker:
    name = NAME
    #: Alpaca stamps orders with its own clock, which this one reads only by a request; a
    #: minute covers the skew of an NTP-synchronized host and a slow acknowledgement.
    listing_overlap = timedelta(seconds=60)

    def __init__(
        self,
        settings: Settings,
        limiter: TokenBucket | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        key = settings.alpaca_api_key.get_secret_value()
        secret = settings.alpaca_secret_key.get_secret_value()
        if not key or not secret:
            raise ConfigurationError(
                "BROKER=alpaca needs ALPACA_API_KEY and ALPACA_SECRET_KEY (paper keys unless "
                "TRADING_MODE=live); set them in .env or the environment"
            )
        live = settings.trading_mode == "live"
        if live and not settings.live_trading_confirmed:  # Settings checks too; fail closed twice
            raise ConfigurationError("TRADING_MODE=live needs LIVE_TRADING_CONFIRMED=true")
        self.paper = not live
        self.limiter = limiter or TokenBucket(
            settings.broker_rate_limit_per_minute, settings.broker_rate_burst
        )
        self._client = TradingClient(
            key, secret, paper=self.paper, url_override=settings.alpaca_base_url or None
        )
        self._client._retry = settings.alpaca_sdk_retry_attempts
        self._client._retry_wait = settings.alpaca_sdk_retry_wait_seconds  # type: ignore[assignment]
        self._client._session = _LimitedSession(self.limiter, settings.alpaca_timeout_seconds)
        self._attempts = settings.broker_max_attempts
        self._policy = BrokerBackoff.from_settings(settings)
        self._sleep = sleep
        log.info(
            "alpaca broker mode=%s endpoint=%s",
            "paper" if self.paper else "LIVE",
            settings.alpaca_base_url or "alpaca",
        )

    # ------------------------------------------------------------------ orders
    def submit_order(self, intent: OrderIntent) -> BrokerOrder:
        request = MarketOrderRequest(
            symbol=intent.symbol,
            qty=float(intent.qty),
            side=OrderSide.BUY if intent.side == "buy" else OrderSide.SELL,
            time_in_force=TimeInForce.OPG,
            client_order_id=intent.client_order_id,
        )
        try:
            order = self._client.submit_order(request)
        except APIError as exc:
            if exc.status_code == 422 and _error_code(exc) == DUPLICATE_CLIENT_ID:
                known = self.get_order_by_client_id(intent.client_order_id)
                if known is not None:  # already submitted (a 504 after storing, a rerun)
                    self._same_order(intent, known)
                    return known
            raise self._classify(exc, f"submitting {intent.client_order_id}") from exc
        except requests.RequestException as exc:
            raise TransientBrokerError(
                f"submitting {intent.client_order_id}: {type(exc).__name__}; the order may "
                "or may not be at Alpaca: ask by client id before sending again"
            ) from exc
        assert isinstance(order, Order)
        return to_broker_order(order)

    @staticmethod
    def _same_order(intent: OrderIntent, known: BrokerOrder) -> None:
        if (known.symbol, known.side, known.qty) != (intent.symbol, intent.side, intent.qty):
            raise PermanentBrokerError(
                f"client_order_id {intent.client_order_id} names another order at Alpaca "
                f"({known.side} {known.qty} {known.symbol})",
                422,
                DUPLICATE_CLIENT_ID,
            )

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        def lookup() -> BrokerOrder | None:
            try:
                order = self._client.get_order_by_client_id(client_order_id)
            except APIError as exc:
                if exc.status_code == 404:
                    return None
                raise
            assert isinstance(order, Order)
            return to_broker_order(order)

        return self._read(lookup, f"looking up {client_order_id}")

    def now(self) -> datetime:
        return datetime.now(UTC)

    def list_orders(self, since: datetime | None = None) -> list[BrokerOrder]:
        """The account's orders submitted after ``since`` (all when None), newest first,
        paging back by submission time."""
        out: list[BrokerOrder] = []
        until: datetime | None = None
        while True:
            request = GetOrdersRequest(
                status=QueryOrderStatus.ALL, limit=PAGE, direction="desc", after=since,
                until=until,
            )
            page = self._read(partial(self._client.get_orders, request), "listing orders")
            assert isinstance(page, list)
            out.extend(to_broker_order(o) for o in page)
            if len(page) < PAGE:
                return out
            until = min(o.submitted_at for o in page)

    def cancel_order(self, broker_order_id: str) -> None:
        self._read(lambda: self._client.cancel_order_by_id(broker_order_id), "cancelling")

    # ------------------------------------------------------------------ account
    def get_positions(self) -> dict[str, Decimal]:
        positions = self._read(self._client.get_all_positions, "reading positions")
        assert isinstance(positions, list)
        return {p.symbol: Decimal(p.qty) for p in positions if Decimal(p.qty) != 0}

    def get_cash(self) -> float:
        account = self._read(self._client.get_account, "reading the account")
        return float(account.cash or 0)  # type: ignore[union-attr]

    def get_account_snapshot(self) -> AccountSnapshot:
        """Positions, account, positions again: kept when the two position reads agree."""
        for _ in range(SNAPSHOT_ATTEMPTS):
            before = self.get_positions()
            cash = self.get_cash()
            if self.get_positions() == before:
                return AccountSnapshot(cash, before)
            log.warning("alpaca positions changed while reading the account; reading again")
        raise TransientBrokerError(
            f"Alpaca's positions changed during each of {SNAPSHOT_ATTEMPTS} account reads "
            "(fills arriving): no consistent snapshot to size orders on; rerun in a minute"
        )

    def process_fills(self) -> int:
        """Alpaca fills orders itself; the ledger reads fills from the orders (reconcile)."""
        return 0

    # ------------------------------------------------------------------ plumbing
    def _read(self, call: Callable[[], T], what: str) -> T:
        """A read (safe to repeat): retried with exponential backoff on transient errors."""
        waited = 0.0
        for attempt in range(1, self._attempts + 1):
            try:
                return call()
            except (APIError, requests.RequestException) as exc:
                error = (
                    self._classify(exc, what)
                    if isinstance(exc, APIError)
                    else (TransientBrokerError(f"{what}: {type(exc).__name__}"))
                )
                if not isinstance(error, TransientBrokerError) or attempt == self._attempts:
                    raise error from exc
                pause = self._policy.pause(attempt, error.retry_after, waited)
                if pause is None:
                    raise TransientBrokerError(
                        f"{error}; retrying would wait past BROKER_MAX_WAIT_SECONDS="
                        f"{self._policy.budget:g}: rerun later",
                        error.retry_after,
                    ) from exc
                log.warning("alpaca %s failed (%s); retry %d in %.2fs", what, error, attempt, pause)
                self._sleep(pause)
                waited += pause
        raise AssertionError("unreachable")

    def backoff(self, attempt: int) -> float:
        """Seconds before retry ``attempt`` (1-based) without a Retry-After: doubling, capped."""
        return min(self._policy.cap, self._policy.initial * 2 ** (attempt - 1))

    @staticmethod
    def _classify(exc: APIError, what: str) -> BrokerError:
        status, code = exc.status_code, _error_code(exc)
        message = f"{what}: Alpaca answered {status} {_error_message(exc)}"
        if status in TRANSIENT_STATUS:
            headers = exc.response.headers if exc.response is not None else {}
            return TransientBrokerError(message, parse_retry_after(headers.get("Retry-After")))
        if status in PERMANENT_STATUS:
            return PermanentBrokerError(message, status, code)
        if status == 401:
            return BrokerError(f"{message}: check ALPACA_API_KEY / ALPACA_SECRET_KEY")
        return BrokerError(message)
