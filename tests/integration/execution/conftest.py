"""Execution fixtures: a fresh local Alpaca server per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.alpaca_trading_server import AlpacaTradingServer
from tests.support.trading import PRICES


@pytest.fixture
def alpaca_server() -> Iterator[AlpacaTradingServer]:
    with AlpacaTradingServer(cash=1_000_000.0, prices=PRICES, default_price=None) as server:
        yield server
