from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from pipelines.errors import DataSourceError
from pipelines.sources.base import BAR_COLUMNS
from pipelines.sources.sample import SampleSource


@pytest.fixture(scope="module")
def source() -> SampleSource:
    return SampleSource()


def test_whole_sample_is_a_real_cross_section(source: SampleSource) -> None:
    bars = source.fetch_daily_bars(date(2009, 8, 21), date(2010, 8, 20), None)
    assert len(bars) == 122_574
    assert bars["symbol"].nunique() == 524 == len(source.universe())
    assert bars["session_date"].nunique() == 245
    assert tuple(bars.columns) == BAR_COLUMNS


def test_volume_is_converted_from_lots_to_shares(source: SampleSource) -> None:
    # The file's first row: 20090821,A,25.6,25.61,25.22,25.55,34758 (lots of 100 shares).
    bar = source.fetch_daily_bars(date(2009, 8, 21), date(2009, 8, 21), ["A"]).iloc[0]
    assert (bar.open, bar.high, bar.low, bar.close) == (25.6, 25.61, 25.22, 25.55)
    assert bar.volume == 3_475_800.0


def test_ts_is_the_session_close_in_utc_including_early_closes(source: SampleSource) -> None:
    bars = source.fetch_daily_bars(date(2009, 11, 25), date(2009, 11, 30), ["IBM"])
    assert list(bars["ts"]) == [
        pd.Timestamp("2009-11-25 21:00", tz="UTC"),  # 16:00 New York (EST)
        pd.Timestamp("2009-11-27 18:00", tz="UTC"),  # day after Thanksgiving: 13:00 close
        pd.Timestamp("2009-11-30 21:00", tz="UTC"),
    ]
    summer = source.fetch_daily_bars(date(2010, 8, 20), date(2010, 8, 20), ["IBM"])
    assert summer["ts"].iloc[0] == pd.Timestamp("2010-08-20 20:00", tz="UTC")  # EDT


def test_unknown_symbol_is_named(source: SampleSource) -> None:
    with pytest.raises(DataSourceError, match="NOPE"):
        source.fetch_daily_bars(date(2010, 1, 4), date(2010, 1, 8), ["AAPL", "NOPE"])


def test_reversed_range_is_refused(source: SampleSource) -> None:
    with pytest.raises(DataSourceError, match="after end"):
        source.fetch_daily_bars(date(2010, 1, 8), date(2010, 1, 4), None)
