"""The broker contract, and the records that cross it.

Quantities are whole shares (``Decimal``); prices are USD. ``client_order_id`` is ours and
unique forever at the broker (as Alpaca keeps it), which is what makes retries safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal, Protocol

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
    status: str  # accepted | partially_filled | filled | cancelled | rejected | expired
    filled_qty: Decimal = Decimal(0)


class Broker(Protocol):
    name: str

    def submit_order(self, intent: OrderIntent) -> BrokerOrder:
        """Send one order; raises BrokerError (never sends twice for one client id)."""
        ...

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None: ...

    def get_positions(self) -> dict[str, Decimal]:
        """Shares held per symbol (non-zero only)."""
        ...

    def get_cash(self) -> float: ...

    def process_fills(self) -> int:
        """Let fills that are due happen (the simulated venue); a real broker returns 0."""
        ...
