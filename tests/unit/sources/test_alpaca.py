"""The Alpaca source against a local server speaking Alpaca's protocol, through alpaca-py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pandas as pd
import pytest

from pipelines.config import Settings
from pipelines.errors import ConfigurationError, DataSourceError
from pipelines.sources import get_source
from pipelines.sources.alpaca import AlpacaSource, settings_from_connection
from pipelines.sources.base import BAR_COLUMNS
from pipelines.sources.sample import SampleSource
from tests.support.alpaca_data_server import AlpacaDataServer, Fault, sample_bars
from tests.unit.sources.alpaca_fixtures import END, KEY, SECRET, START, SYMBOLS, server, source


@pytest.fixture
def alpaca() -> Iterator[AlpacaDataServer]:
    with server() as s:
        yield s


def test_daily_bars_are_the_vendors_bars_in_the_canonical_frame(alpaca: AlpacaDataServer) -> None:
    got = source(alpaca.url).fetch_daily_bars(START, END, SYMBOLS)
    expected = SampleSource().fetch_daily_bars(START, END, SYMBOLS)
    assert len(got) == 57
    pd.testing.assert_frame_equal(
        got[list(BAR_COLUMNS)].reset_index(drop=True),
        expected.reset_index(drop=True),
        check_dtype=False,
    )
    assert str(got["ts"].dt.tz) == "UTC"


def test_pages_are_followed_and_requests_are_raw_prices_on_the_feed(
    alpaca: AlpacaDataServer,
) -> None:
    source(alpaca.url).fetch_daily_bars(START, END, SYMBOLS)
    assert len(alpaca.requests) == 3  # 57 bars, 20 per page
    first, *rest = [r["params"] for r in alpaca.requests]
    assert "page_token" not in first and all(r["page_token"] for r in rest)
    assert first["symbols"] == "A,AAPL,IBM"  # one request for the chunk, paged across symbols
    assert (first["timeframe"], first["adjustment"], first["feed"]) == ("1Day", "raw", "iex")
    assert first["limit"] == "20"
    headers = alpaca.requests[0]["headers"]
    assert (headers["apca-api-key-id"], headers["apca-api-secret-key"]) == (KEY, SECRET)


def test_early_close_and_dst_are_in_ts(alpaca: AlpacaDataServer) -> None:
    alpaca.bars["1Day"].update(sample_bars(["IBM"], date(2009, 11, 25), date(2009, 11, 30)))
    bars = source(alpaca.url).fetch_daily_bars(date(2009, 11, 25), date(2009, 11, 30), ["IBM"])
    assert list(bars["ts"]) == [
        pd.Timestamp("2009-11-25 21:00", tz="UTC"),
        pd.Timestamp("2009-11-27 18:00", tz="UTC"),  # 13:00 New York early close
        pd.Timestamp("2009-11-30 21:00", tz="UTC"),
    ]


def test_minute_bars_share_the_code_path() -> None:
    # Two one-minute bars of IBM on 2010-01-04 whose prices are the session's sample open/close.
    day = SampleSource().fetch_daily_bars(date(2010, 1, 4), date(2010, 1, 4), ["IBM"]).iloc[0]
    minute = [
        {"t": "2010-01-04T14:30:00Z", "o": day.open, "h": day.open, "l": day.open,
         "c": day.open, "v": 100, "n": 1, "vw": day.open},
        {"t": "2010-01-04T20:59:00Z", "o": day.close, "h": day.close, "l": day.close,
         "c": day.close, "v": 200, "n": 1, "vw": day.close},
    ]  # fmt: skip
    with AlpacaDataServer({"1Min": {"IBM": minute}}, KEY, SECRET) as s:
        bars = source(s.url).fetch_minute_bars(date(2010, 1, 4), date(2010, 1, 4), ["IBM"])
        assert s.requests[0]["params"]["timeframe"] == "1Min"
    assert list(bars["ts"]) == [
        pd.Timestamp("2010-01-04 14:31", tz="UTC"),  # bar end = start + 1 minute
        pd.Timestamp("2010-01-04 21:00", tz="UTC"),
    ]
    assert list(bars["session_date"]) == [date(2010, 1, 4)] * 2
    assert list(bars["close"]) == [day.open, day.close]


def test_sdk_retries_are_off_so_our_attempts_are_the_bound(alpaca: AlpacaDataServer) -> None:
    # alpaca-py would retry a 429 three times by itself, 3 s apart: here 2 attempts = 2 requests.
    alpaca.faults = [Fault(status=429, body='{"message": "too many requests."}')] * 5
    with pytest.raises(DataSourceError, match="still failing after 2 attempts"):
        source(alpaca.url, attempts=2).fetch_daily_bars(START, END, SYMBOLS)
    assert len(alpaca.requests) == 2


def test_credentials_are_required_and_never_in_errors(alpaca: AlpacaDataServer) -> None:
    with pytest.raises(ConfigurationError, match="ALPACA_API_KEY"):
        AlpacaSource("", "")
    wrong = AlpacaSource(KEY, "another-secret", url=alpaca.url)
    with pytest.raises(DataSourceError) as info:
        wrong.fetch_daily_bars(START, END, SYMBOLS)
    assert "403" in str(info.value) and "another-secret" not in str(info.value)


def test_universe_must_be_configured() -> None:
    with pytest.raises(ConfigurationError, match="UNIVERSE"):
        AlpacaSource(KEY, SECRET).universe()


def test_get_source_wires_data_source(alpaca: AlpacaDataServer) -> None:
    settings = Settings(
        data_source="alpaca",
        alpaca_api_key=KEY,
        alpaca_secret_key=SECRET,
        alpaca_data_url=alpaca.url,
        alpaca_data_feed="sip",
        universe="IBM",
    )
    chosen = get_source(settings)
    assert isinstance(chosen, AlpacaSource)
    assert SECRET not in repr(settings)
    bars = chosen.fetch_daily_bars(START, END, None)
    assert set(bars["symbol"]) == {"IBM"} and len(bars) == 19
    assert alpaca.requests[0]["params"]["feed"] == "sip"
    assert get_source(Settings(data_source="sample")).name == "sample"


def test_corporate_actions_through_alpacas_endpoint(alpaca: AlpacaDataServer) -> None:
    # Alpaca's JSON shape for a forward split, a reverse split and a cash dividend.
    alpaca.actions = {
        "forward_splits": [
            {"id": "1d3b9c1e-0000-4000-8000-000000000001", "symbol": "IBM", "cusip": "459200101",
             "new_rate": 2, "old_rate": 1,
             "process_date": "2010-02-16", "ex_date": "2010-02-16"},
        ],
        "reverse_splits": [
            {"id": "1d3b9c1e-0000-4000-8000-000000000002", "symbol": "A",
             "old_cusip": "00846U101", "new_cusip": "00846U102", "new_rate": 1,
             "old_rate": 10, "process_date": "2010-03-01", "ex_date": "2010-03-01"},
        ],
        "cash_dividends": [
            {"id": "1d3b9c1e-0000-4000-8000-000000000003", "symbol": "IBM", "cusip": "459200101",
             "rate": 0.55, "special": False,
             "foreign": False, "process_date": "2010-03-10", "ex_date": "2010-02-08",
             "record_date": "2010-02-10", "payable_date": "2010-03-10"},
            {"id": "1d3b9c1e-0000-4000-8000-000000000004", "symbol": "AAPL", "cusip": "037833100",
             "rate": 0.1, "special": False,
             "foreign": False, "process_date": "2011-01-01", "ex_date": "2011-01-01"},
        ],
    }  # fmt: skip
    vendor = source(alpaca.url)
    actions = vendor.fetch_corporate_actions(date(2010, 1, 1), date(2010, 12, 31), SYMBOLS)
    assert sorted(actions.itertuples(index=False, name=None)) == [
        ("A", date(2010, 3, 1), "split", 0.1, "alpaca"),
        ("IBM", date(2010, 2, 8), "dividend", 0.55, "alpaca"),
        ("IBM", date(2010, 2, 16), "split", 2.0, "alpaca"),
    ]
    request = alpaca.requests[-1]
    assert request["path"] == "/v1/corporate-actions"
    assert request["params"]["types"] == "forward_split,reverse_split,cash_dividend"
    assert request["headers"]["apca-api-secret-key"] == SECRET


def test_an_airflow_connection_maps_onto_the_settings(alpaca: AlpacaDataServer) -> None:
    overrides = settings_from_connection(KEY, SECRET, alpaca.url, {"feed": "sip"})
    settings = Settings(universe="IBM").model_copy(update=overrides)
    bars = AlpacaSource.from_settings(settings).fetch_daily_bars(START, END, None)
    assert len(bars) == 19
    params, headers = alpaca.requests[0]["params"], alpaca.requests[0]["headers"]
    assert params["feed"] == "sip" and headers["apca-api-key-id"] == KEY
    assert settings_from_connection("k", "s", "data.alpaca.markets", None)["alpaca_data_url"] == (
        "https://data.alpaca.markets"
    )
    with pytest.raises(ConfigurationError, match="login"):
        settings_from_connection("k", None, None, None)
    with pytest.raises(ConfigurationError, match="iex or sip"):
        settings_from_connection("k", "s", None, {"feed": "otc"})
