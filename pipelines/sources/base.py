"""The market-data source contract.

A source returns daily bars as the *canonical bar frame*, one row per (symbol, session):

=============  ==========================  ==============================================
column         dtype                       meaning
=============  ==========================  ==============================================
symbol         str                         upper-case ticker as the vendor spells it
ts             datetime64[UTC]             the session's close (13:00 New York on early closes)
session_date   object (datetime.date)      the NYSE session date
open .. close  float64                     US dollars, unadjusted, as the vendor reports them
volume         float64                     shares
=============  ==========================  ==============================================

Sources do not clean data: the validation gate decides what is loaded and what is quarantined.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

import pandas as pd

BAR_COLUMNS = ("symbol", "ts", "session_date", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")


class MarketDataSource(Protocol):
    """A vendor of daily bars (``sample``, ``yahoo``, ``alpaca``)."""

    name: str

    def universe(self) -> list[str]:
        """Symbols the source offers."""
        ...

    def fetch_daily_bars(self, start: date, end: date, symbols: list[str] | None) -> pd.DataFrame:
        """Bars for sessions in ``[start, end]`` (all offered symbols when ``symbols`` is None)."""
        ...
