"""Synthetic daily bars for warehouse tests."""

from __future__ import annotations

from datetime import date

import pandas as pd


def synthetic_bars(days: list[date], symbol: str = "SYN") -> pd.DataFrame:
    """Plausible daily bars on the given dates, ``ts`` at 21:00 UTC (the 16:00 EST close)."""
    return pd.DataFrame(
        {
            "symbol": symbol,
            "ts": [pd.Timestamp(d).tz_localize("UTC") + pd.Timedelta(hours=21) for d in days],
            "session_date": days,
            "open": 10.0,
            "high": 11.0,
            "low": 9.0,
            "close": 10.5,
            "volume": 1000.0,
        }
    )
