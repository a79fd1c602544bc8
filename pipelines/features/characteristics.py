"""Point-in-time price and volume characteristics, ranked cross-sectionally.

Computed on *wide* panels (rows = sessions, columns = symbols) so every rolling statistic is
one vectorized call. A value dated session t uses closes and volumes through t's close only.
Returns are simple daily returns; volatilities are daily (not annualized); dollar volume is in
USD. The sample data covers one year, so every window is at most 63 sessions.

Ranking (Kelly, Pruitt & Su 2019): on each date, each characteristic's values across the
symbols that have it are ranked (average rank for ties) and mapped linearly onto
[-0.5, 0.5]: ``(rank - 1) / (n - 1) - 0.5``, so the lowest value is -0.5, the highest +0.5
and the median 0. A missing value is set to 0, the cross-sectional median.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MIN_HISTORY = 64  # sessions of closes a symbol needs before its first feature row (63 + today)

WINDOWS = {
    "ret_5d": 5,
    "ret_21d": 21,
    "mom_63d_skip5": 63,
    "vol_21d": 21,
    "vol_63d": 63,
    "max_ret_21d": 21,
    "log_dollar_volume_21d": 21,
    "amihud_21d": 21,
}
NAMES = tuple(WINDOWS)


def raw_characteristics(bars: pd.DataFrame) -> pd.DataFrame:
    """Unranked characteristics, index (session_date, symbol), one column per name.

    ``bars`` needs ``symbol, session_date, close, volume``; rows appear only for a symbol's
    sessions with a close and at least :data:`MIN_HISTORY` sessions of history.
    """
    close = bars.pivot(index="session_date", columns="symbol", values="close").sort_index()
    volume = bars.pivot(index="session_date", columns="symbol", values="volume").sort_index()
    ret = close / close.shift(1) - 1
    log_ret = np.log(close / close.shift(1))
    dollar_volume = close * volume
    panels = {
        "ret_5d": close / close.shift(5) - 1,
        "ret_21d": close / close.shift(21) - 1,
        "mom_63d_skip5": close.shift(5) / close.shift(63) - 1,
        "vol_21d": log_ret.rolling(21).std(),
        "vol_63d": log_ret.rolling(63).std(),
        "max_ret_21d": ret.rolling(21).max(),
        "log_dollar_volume_21d": np.log(dollar_volume.rolling(21).mean()),
        "amihud_21d": (ret.abs() / dollar_volume).rolling(21).mean() * 1e6,
    }
    history = close.notna().cumsum()
    eligible = close.notna() & (history >= MIN_HISTORY)
    stacked = {
        name: panel.where(eligible).stack(future_stack=True) for name, panel in panels.items()
    }
    frame = pd.DataFrame(stacked)
    keep = eligible.stack(future_stack=True)
    frame = frame[keep.reindex(frame.index, fill_value=False)]
    frame.index = frame.index.set_names(["session_date", "symbol"])
    return frame.replace([np.inf, -np.inf], np.nan)


def rank_cross_section(raw: pd.DataFrame) -> pd.DataFrame:
    """Map each date's values onto [-0.5, 0.5] by rank; missing values become 0."""
    by_date = raw.groupby(level="session_date")
    ranks = by_date.rank(method="average")
    counts = by_date.transform("count")
    scaled = (ranks - 1).div((counts - 1).where(counts > 1)) - 0.5
    return scaled.fillna(0.0)


def compute(bars: pd.DataFrame) -> pd.DataFrame:
    """Ranked characteristics, index (session_date, symbol), columns :data:`NAMES`."""
    return rank_cross_section(raw_characteristics(bars))[list(NAMES)]
