"""The broker contract, and the records that cross it.

Quantities are whole shares (``Decimal``); prices are USD. ``client_order_id`` is ours and
unique forever at the broker (as Alpaca keeps it), which is what makes retries safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal, Protocol

from pipelines.errors import BrokerError

Side = Literal["buy", "sell"]


@dataclass(frozen=True)
class OrderIntent:
    """An order we mean to send: market-on-open for ``session_date``."""

    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    session_date: date


@dataclass(frozen=True)
class BrokerOrder:
    """The broker's view of one order."""

    broker_order_id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    status: str  # the ledger's name: accepted | partially_filled | filled | cancelled | ...
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: float | None = None  # USD per share over filled_qty
    broker_status: str | None = None  # the broker's own word for it (Alpaca: "new", ...)
    updated_at: datetime | None = None


@dataclass(frozen=True)
class AccountSnapshot:
    """Cash (USD) and shares held per symbol (non-zero only), as of one moment: no fill
    falls between the two. Order sizing and current weights read this, never two calls."""

    cash: float
    positions: dict[str, Decimal]


class TransientBrokerError(BrokerError):
    """The request may not have taken effect (429, 5xx, timeout, connection lost).

    Safe to retry only after asking the broker for the order by its client id.
    ``retry_after``: the broker's ``Retry-After`` hint in seconds (a 429), if it sent one.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentBrokerError(BrokerError):
    """The broker refused the order for good (403 buying power, 422 bad parameters).

    Retrying the same request cannot help: the order goes to the dead-letter table.
    """

    def __init__(self, message: str, http_status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.http_status = http_status
        self.code = code


class Broker(Protocol):
    name: str
    #: How far before the last clean reconciliation's listing (:meth:`now`) the next one
    #: starts: the skew between :meth:`now` and the clock the broker stamps orders with, plus
    #: the time a submitted order can take to appear in a listing.
    listing_overlap: timedelta

    def now(self) -> datetime:
        """The instant a reconciliation lists from, on the clock nearest the one that stamps
        the broker's orders (timezone-aware UTC)."""
        ...

    def submit_order(self, intent: OrderIntent) -> BrokerOrder:
        """Send one order; raises TransientBrokerError or PermanentBrokerError.

        A client id the broker already holds is not an error: the existing order is returned.
        """
        ...

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None: ...

    def list_orders(self, since: datetime | None = None) -> list[BrokerOrder]:
        """The account's orders submitted after ``since`` (by the broker's clock), every one
        when None (for reconciliation)."""
        ...

    def get_positions(self) -> dict[str, Decimal]:
        """Shares held per symbol (non-zero only)."""
        ...

    def get_cash(self) -> float: ...

    def get_account_snapshot(self) -> AccountSnapshot:
        """Cash and positions from one consistent read (see :class:`AccountSnapshot`)."""
        ...

    def process_fills(self) -> int:
        """Let fills that are due happen (the simulated venue); a real broker returns 0."""
        ...
