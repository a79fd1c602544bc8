"""The Yahoo source through yfinance itself, on a requests-mock session serving sample bars."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date

import pandas as pd
import pytest

os.environ["YF_DISABLE_CURL_CFFI"] = "1"

from pipelines.errors import ConfigurationError  # noqa: E402
from pipelines.ratelimit import TokenBucket  # noqa: E402
from pipelines.sources.base import PartialFetchError  # noqa: E402
from pipelines.sources.retry import RetryPolicy  # noqa: E402
from pipelines.sources.sample import SampleSource  # noqa: E402
from pipelines.sources.yahoo import YahooSource  # noqa: E402
from tests.unit.sources.yahoo_fixtures import Chart, FakeYahoo  # noqa: E402

# yfinance 1.7 on pandas 3 warns about its own use of inplace=; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")

START, END = date(2010, 1, 4), date(2010, 3, 31)
SPLIT_DAY, DIVIDEND_DAY = date(2010, 2, 16), date(2010, 2, 8)  # the split is fictional


@pytest.fixture(autouse=True)
def _tz_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    import yfinance as yf

    yf.set_tz_cache_location(str(tmp_path_factory.mktemp("yf-tz")))
    yield


def yahoo_source(fake: FakeYahoo, attempts: int = 3) -> YahooSource:
    return YahooSource(
        session=fake.session,
        retry=RetryPolicy(attempts=attempts, initial_wait=0.0, max_wait=0.0),
        bucket=TokenBucket(1_000_000),
    )


@pytest.fixture
def fake() -> FakeYahoo:
    return FakeYahoo(
        [
            Chart("IBM", START, END, splits={SPLIT_DAY: 2.0}, dividends={DIVIDEND_DAY: 0.55}),
            Chart("A", START, END),
        ]
    )


def test_bars_are_as_traded_after_undoing_yahoos_split_adjustment(fake: FakeYahoo) -> None:
    got = yahoo_source(fake).fetch_daily_bars(START, END, ["IBM", "A"])
    assert got["vendor_ts"].str.endswith("T00:00:00-05:00").any()  # yfinance's time, as given
    got = got.drop(columns=["vendor_ts", "vendor_clock", "raw"])
    expected = SampleSource().fetch_daily_bars(START, END, ["A", "IBM"])
    got = got.sort_values(["symbol", "ts"]).reset_index(drop=True)
    expected = expected.sort_values(["symbol", "ts"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, atol=1e-9, rtol=1e-9)
    # The split is really in what Yahoo sent: IBM's first close there is half the traded one.
    first = fake.charts["IBM"]["chart"]["result"][0]["indicators"]["quote"][0]["close"][0]
    assert first == pytest.approx(expected.loc[expected.symbol == "IBM", "close"].iloc[0] / 2)


def test_splits_and_dividends_come_back_unadjusted(fake: FakeYahoo) -> None:
    actions = yahoo_source(fake).fetch_corporate_actions(START, END, ["IBM", "A"])
    rows = sorted(actions.itertuples(index=False, name=None))
    assert rows == [
        ("IBM", DIVIDEND_DAY, "dividend", pytest.approx(0.55), "yahoo"),  # Yahoo sent 0.275
        ("IBM", SPLIT_DAY, "split", 2.0, "yahoo"),
    ]


def test_unknown_symbol_is_named_and_good_bars_are_kept(fake: FakeYahoo) -> None:
    with pytest.raises(PartialFetchError, match="NOPE: Yahoo does not know NOPE") as info:
        yahoo_source(fake).fetch_daily_bars(START, END, ["IBM", "NOPE", "A'; DROP TABLE bars;--"])
    result = info.value.result
    assert set(result.failures) == {"NOPE", "A'; DROP TABLE bars;--"}
    assert "not a ticker" in result.failures["A'; DROP TABLE bars;--"]
    assert set(result.bars["symbol"]) == {"IBM"} and len(result.bars) == 61
    assert "A'; DROP TABLE BARS;--" not in fake.data_requests


def test_universe_must_be_configured(fake: FakeYahoo) -> None:
    with pytest.raises(ConfigurationError, match="UNIVERSE"):
        yahoo_source(fake).fetch_daily_bars(START, END, None)


def test_fixture_adjclose_is_what_yfinance_reports(fake: FakeYahoo) -> None:
    # yfinance passes Yahoo's adjclose through as "Adj Close" (auto_adjust=False).
    import yfinance as yf

    history = yf.Ticker("IBM", session=fake.session).history(
        start=START.isoformat(), end="2010-04-01", auto_adjust=False, actions=True
    )
    sent = fake.charts["IBM"]["chart"]["result"][0]["indicators"]["adjclose"][0]["adjclose"]
    assert history["Adj Close"].tolist() == pytest.approx(sent)


def test_yahoo_bars_go_through_the_same_vendor_rules(fake: FakeYahoo) -> None:
    """Window, session and vendor-time rules judge Yahoo's rows as they do Alpaca's."""
    from pipelines.validation import validate_bars

    got = yahoo_source(fake).fetch_daily_bars(START, END, ["IBM"])
    n = len(got)
    got.loc[0, "vendor_ts"] = got.loc[0, "vendor_ts"][:19]  # naive: no offset
    got.loc[1, "vendor_ts"] = got.loc[1, "vendor_ts"].replace("T00:00", "T09:30")
    last = got.loc[n - 2, "session_date"]  # the last row is outside [START, last]
    result = validate_bars(got, start=START, end=last, symbols=["IBM", "A"])
    rules = dict(zip(result.rejected.index, result.rejected["expectation"], strict=True))
    assert rules == {0: "vendor_time_ok", 1: "bar_time", n - 1: "in_window"}
    assert len(result.valid) == n - 3
    assert result.summary["missing_sessions"]["by_symbol"]["A"]["count"] > 0  # asked, none sent
