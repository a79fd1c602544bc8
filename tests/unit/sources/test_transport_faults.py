"""The transport part of the bad-input corpus: what a vendor's HTTP layer can do wrong.

Each kind is driven through the real client library (alpaca-py against the local Alpaca server)
and ends one of two ways: **retried then succeeded** (every bar of the batch back, the extra
requests visible in the server's log) or **rejected with a reason** a user can act on. When one
symbol of a batch is bad, the good symbols' bars still come back: :class:`PartialFetchError`
carries them (``.result.bars``) and names the bad symbol (``.result.failures``).
The data-defect part of the corpus (NaN, high < low, …) is the validation gate's, in
``tests/unit/validation``. The Yahoo transport faults are in ``test_yahoo.py``.
"""

from __future__ import annotations

import os
import pathlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import requests

from pipelines.errors import DataSourceError
from pipelines.ratelimit import TokenBucket
from pipelines.sources.base import PartialFetchError
from pipelines.sources.retry import RetryPolicy
from pipelines.sources.sample import SampleSource
from pipelines.sources.yahoo import YahooSource
from tests.support.alpaca_data_server import AlpacaDataServer, Fault
from tests.unit.sources.alpaca_fixtures import END, START, SYMBOLS, server, source
from tests.unit.sources.yahoo_fixtures import Chart, FakeYahoo, YahooFault

os.environ["YF_DISABLE_CURL_CFFI"] = "1"

RATE_LIMITED = Fault(
    status=429,
    body='{"message": "too many requests."}',
    headers={
        "X-RateLimit-Limit": "200",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(time.time())),
    },
)


@dataclass
class Case:
    faults: list[Fault] = field(default_factory=list)
    symbols: list[str] = field(default_factory=lambda: list(SYMBOLS))
    # None: every bar comes back. Otherwise the error must match this, and ``bad`` (if any)
    # must be the only failed symbol while the good symbols' bars all come back.
    error: str | None = None
    bad: str | None = None
    requests: int | None = None  # how many requests the server must have seen
    setup: Callable[[AlpacaDataServer], None] | None = None
    url: str | None = None  # e.g. a port where nothing listens
    timeout_s: float = 5.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reject(symbol: str) -> Callable[[AlpacaDataServer], None]:
    return lambda server: server.reject_symbols.add(symbol)


CASES = {
    # Transient: retried, then every bar comes back (3 pages + the failed attempt).
    "http_429_rate_limited": Case(faults=[RATE_LIMITED], requests=4),
    "http_500": Case(faults=[Fault(status=500, body="internal error")], requests=4),
    "http_502": Case(faults=[Fault(status=502, body="<html>bad gateway</html>")], requests=4),
    "http_503": Case(faults=[Fault(status=503, body="")], requests=4),
    "http_504": Case(faults=[Fault(status=504, body="")], requests=4),
    "timeout": Case(faults=[Fault(delay_s=0.6)], timeout_s=0.2, requests=4),
    "connection_reset": Case(faults=[Fault(reset=True)], requests=4),
    "truncated_json": Case(faults=[Fault(truncate=True)], requests=4),
    "empty_response_body": Case(faults=[Fault(empty=True)], requests=4),
    # The same page token twice: the batch is asked again one symbol at a time.
    "pagination_loop": Case(faults=[Fault(repeat_token=True), Fault(repeat_token=True)]),
    # Rejected with a reason, nothing retried in vain.
    "http_500_persistent": Case(
        faults=[Fault(status=500, body="internal error")] * 3,
        error="still failing after 3 attempts.*HTTP 500",
        requests=3,
    ),
    "connection_refused": Case(
        url=f"http://127.0.0.1:{_free_port()}", error="still failing after 3 attempts.*reach"
    ),
    "http_403_bad_credentials": Case(
        faults=[Fault(status=403, body='{"message": "forbidden."}')],
        error="refused the credentials.*ALPACA_API_KEY",
        requests=1,
    ),
    "no_bars_at_all": Case(symbols=["MSFT"], error="MSFT: Alpaca returned no bars", bad="MSFT"),
    # One bad symbol among good ones: named, and the good ones' bars all come back.
    "unknown_symbol": Case(symbols=[*SYMBOLS, "NOPE"], error="NOPE: .*no bars", bad="NOPE"),
    "symbol_with_sql": Case(
        symbols=[*SYMBOLS, "A'; DROP TABLE bars;--"],
        error="not a ticker",
        bad="A'; DROP TABLE bars;--",
    ),
    "symbol_with_path": Case(symbols=["../etc", *SYMBOLS], error="not a ticker", bad="../etc"),
    "symbol_rejected_by_vendor_422": Case(
        symbols=[*SYMBOLS, "BADX"], setup=_reject("BADX"), error="BADX: .*HTTP 422", bad="BADX"
    ),
    "bars_for_a_symbol_not_asked": Case(
        faults=[Fault(extra_symbol="ZZZZ")], error="ZZZZ, which was not requested", bad="ZZZZ"
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_transport_fault(case: Case) -> None:
    expected = SampleSource().fetch_daily_bars(START, END, SYMBOLS)
    with server() as alpaca:
        alpaca.faults = list(case.faults)
        if case.setup:
            case.setup(alpaca)
        vendor = source(case.url or alpaca.url, attempts=3, timeout_s=case.timeout_s)
        if case.error is None:
            bars = vendor.fetch_daily_bars(START, END, case.symbols)
            assert len(bars) == len(expected) == 57
            assert bars.sort_values(["symbol", "ts"])["close"].tolist() == (
                expected.sort_values(["symbol", "ts"])["close"].tolist()
            )
        elif case.bad is None:
            with pytest.raises(DataSourceError, match=case.error) as info:
                vendor.fetch_daily_bars(START, END, case.symbols)
            assert not isinstance(info.value, PartialFetchError)
        else:
            with pytest.raises(PartialFetchError, match=case.error) as partial:
                vendor.fetch_daily_bars(START, END, case.symbols)
            result = partial.value.result
            assert list(result.failures) == [case.bad]
            good = [s for s in case.symbols if s in SYMBOLS]
            assert len(result.bars) == 19 * len(good)  # no good row of the batch lost
            assert set(result.bars["symbol"]) == set(good)
        if case.requests is not None:
            assert len(alpaca.requests) == case.requests
        for request in alpaca.requests:  # malformed symbols never reach the vendor
            assert "'" not in request["params"].get("symbols", "")
            assert ".." not in request["params"].get("symbols", "")


# --- Yahoo, through yfinance on a requests-mock session --------------------------------------

YAHOO_CASES = {
    "yahoo_http_429": (
        [YahooFault(status=429, body="Too Many Requests")],
        None,
    ),
    "yahoo_http_500": ([YahooFault(status=500, body="<html>oops</html>")], None),
    "yahoo_http_503": ([YahooFault(status=503, body="")], None),
    "yahoo_timeout": ([YahooFault(exc=requests.exceptions.ReadTimeout)], None),
    "yahoo_connection_refused_once": ([YahooFault(exc=requests.exceptions.ConnectionError)], None),
    "yahoo_truncated_json": ([YahooFault(truncate=True)], None),
    "yahoo_http_500_persistent": (
        [YahooFault(status=500, body="")] * 3,
        "still failing after 3 attempts.*HTTP 500",
    ),
}


@pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")
@pytest.mark.parametrize(("faults", "error"), YAHOO_CASES.values(), ids=YAHOO_CASES.keys())
def test_yahoo_transport_fault(
    faults: list[YahooFault], error: str | None, tmp_path: pathlib.Path
) -> None:
    import yfinance as yf

    yf.set_tz_cache_location(str(tmp_path))
    fake = FakeYahoo([Chart("IBM", START, END), Chart("A", START, END)])
    fake.faults = list(faults)
    vendor = YahooSource(
        session=fake.session,
        retry=RetryPolicy(attempts=3, initial_wait=0.0, max_wait=0.0),
        bucket=TokenBucket(1_000_000),
    )
    if error is None:
        bars = vendor.fetch_daily_bars(START, END, ["A", "IBM"])
        expected = SampleSource().fetch_daily_bars(START, END, ["A", "IBM"])
        assert len(bars) == len(expected) == 38
        assert bars["close"].tolist() == pytest.approx(expected["close"].tolist())
        assert fake.data_requests == ["A", "A", "IBM"]  # A failed once, then succeeded
    else:
        with pytest.raises(DataSourceError, match=error):
            vendor.fetch_daily_bars(START, END, ["A", "IBM"])
