"""A fake Yahoo Finance for yfinance: a ``requests.Session`` with ``requests-mock`` mounted.

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
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import requests
import requests_mock

from pipelines import calendar
from pipelines.sources.sample import SampleSource

NOT_FOUND = {
    "chart": {
        "result": None,
        "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
    }
}


@dataclass
class Chart:
    """One symbol's series: sample bars of ``[start, end]`` plus events (as traded)."""

    symbol: str
    start: date
    end: date
    splits: dict[date, float] = field(default_factory=dict)  # new shares per old
    dividends: dict[date, float] = field(default_factory=dict)  # USD per share, as paid

    def json(self) -> dict[str, Any]:
        bars = SampleSource().fetch_daily_bars(self.start, self.end, [self.symbol])
        opens = calendar.schedule(self.start, self.end)["open"]
        days = list(bars["session_date"])

        def later(day: date) -> float:  # splits strictly after ``day``
            ratio = 1.0
            for split_day, r in self.splits.items():
                if split_day > day:
                    ratio *= r
            return ratio

        quote = {
            c: [float(v) / later(d) for v, d in zip(bars[c], days, strict=True)]
            for c in ("open", "high", "low", "close")
        }
        quote["volume"] = [int(v * later(d)) for v, d in zip(bars["volume"], days, strict=True)]
        # CRSP-style adjclose, computed the plain way: walk back from the last bar.
        adj, factor = [0.0] * len(days), 1.0
        for i in range(len(days) - 1, -1, -1):
            adj[i] = quote["close"][i] * factor
            if days[i] in self.dividends and i > 0:
                cash = self.dividends[days[i]] / later(days[i])
                factor *= 1 - cash / quote["close"][i - 1]
        stamps = {d: int(opens[d].timestamp()) for d in days}
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
        meta = {
            "currency": "USD",
            "symbol": self.symbol,
            "exchangeName": "NYQ",
            "fullExchangeName": "NYSE",
            "instrumentType": "EQUITY",
            "firstTradeDate": -252322200,
            "regularMarketTime": stamps[days[-1]],
            "hasPrePostMarketData": True,
            "gmtoffset": -14400,
            "timezone": "EDT",
            "exchangeTimezoneName": "America/New_York",
            "regularMarketPrice": quote["close"][-1],
            "priceHint": 2,
            "dataGranularity": "1d",
            "range": "",
            "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
        }
        return {
            "chart": {
                "result": [
                    {
                        "meta": meta,
                        "timestamp": [stamps[d] for d in days],
                        "events": events,
                        "indicators": {"quote": [quote], "adjclose": [{"adjclose": adj}]},
                    }
                ],
                "error": None,
            }
        }


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
