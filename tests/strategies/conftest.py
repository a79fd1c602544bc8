"""Known price paths for the strategy tests: four symbols whose ranks are set by hand.

Over 140 sessions A rises 0.2%/session, B 0.1%, C is flat and D falls 0.1%; in the last five
sessions A falls 2%/session and D rises 2%/session (B and C keep their trend). So over the
momentum window that skips the last five sessions A > B > C > D, while over the last five
sessions D > B > C > A.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from pipelines import calendar
from pipelines.backtest.data import MarketData
from pipelines.features import characteristics


@pytest.fixture(scope="session")
def known_market() -> MarketData:
    days = calendar.sessions(date(2015, 1, 1), date(2015, 12, 31))[:140]
    steps = {"A": 0.002, "B": 0.001, "C": 0.0, "D": -0.001}
    late = {"A": -0.02, "B": 0.001, "C": 0.0, "D": 0.02}
    close = {}
    for symbol, step in steps.items():
        daily = np.full(len(days), step)
        daily[-5:] = late[symbol]
        close[symbol] = 50 * np.cumprod(1 + daily)
    frame = pd.DataFrame(close, index=pd.Index(days, name="session_date"))
    frame.columns.name = "symbol"
    volume = pd.DataFrame(1e6, index=frame.index, columns=frame.columns)
    panels = {
        "open": frame,
        "high": frame * 1.01,
        "low": frame * 0.99,
        "close": frame,
        "volume": volume,
    }
    market = MarketData(panels)
    return market.with_features(characteristics.compute(market.to_bars()))
