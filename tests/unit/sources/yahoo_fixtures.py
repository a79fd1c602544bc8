"""A fake Yahoo Finance for yfinance: a ``requests.Session`` with ``requests-mock`` mounted.

(The chart JSON, :class:`Chart`, is shared with the local server of the integration tests,
``tests/support/yahoo_chart_server.py``.)

It answers the URLs yfinance 1.7 calls for ``Ticker.history`` (``fc.yahoo.com`` for the
cookie, ``/v1/test/getcrumb``, ``/v8/finance/chart/{symbol}?range=1d`` for the time zone and
``/v8/finance/chart/{symbol}?period1=…`` for the data) with chart JSON built from the real
sample bars, as Yahoo would send them: OHLC and volume restated for later splits, dividends
restated for later splits, ``adjclose`` adjusted for splits and dividends, bars stamped at the
session's open. The split events are added by the tests (the sample period has none we know of).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import requests
import requests_mock

from tests.support.yahoo_chart_server import NOT_FOUND, Chart

__all__ = ["Chart", "FakeYahoo", "YahooFault"]


@dataclass
class YahooFault:
    """Instead of one data request (``period1=…``): a status, a body, or an exception."""

    status: int = 200
    body: str | None = None
    exc: type[Exception] | None = None
    truncate: bool = False


class FakeYahoo:
    """``FakeYahoo([Chart(...)]).session`` is what ``YahooSource(session=...)`` takes."""

    def __init__(self, charts: list[Chart]) -> None:
        self.charts = {c.symbol: c.json() for c in charts}
        self.faults: list[YahooFault] = []
        self.data_requests: list[str] = []
        self.session = requests.Session()
        adapter = requests_mock.Adapter()
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        # The last matcher registered wins: the catch-all goes first.
        adapter.register_uri(requests_mock.ANY, requests_mock.ANY, status_code=404, text="")
        adapter.register_uri("GET", re.compile(r"https://fc\.yahoo\.com"), text="")
        adapter.register_uri(
            "GET", re.compile(r"https://query\d\.finance\.yahoo\.com/v1/test/getcrumb"),
            text="test-crumb",
        )  # fmt: skip
        adapter.register_uri(
            "GET", re.compile(r"https://query\d\.finance\.yahoo\.com/v8/finance/chart/"),
            text=self._chart,
        )  # fmt: skip

    def _chart(self, request: Any, context: Any) -> str:
        symbol = request.path.rsplit("/", 1)[-1].upper()
        body = json.dumps(self.charts[symbol]) if symbol in self.charts else None
        if "period1" in request.query:
            self.data_requests.append(symbol)
            if self.faults:
                fault = self.faults.pop(0)
                if fault.exc is not None:
                    raise fault.exc("fault injected by the test")
                if fault.truncate and body is not None:
                    return body[: len(body) // 2]
                if fault.status != 200 or fault.body is not None:
                    context.status_code = fault.status
                    return fault.body or ""
        if body is None:
            context.status_code = 404
            return json.dumps(NOT_FOUND)
        return body
