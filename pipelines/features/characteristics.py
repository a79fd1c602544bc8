"""Point-in-time price and volume characteristics, ranked cross-sectionally.

Computed on *wide* panels (rows = sessions, columns = symbols) so every rolling statistic is
one vectorized call. A value dated session t uses closes and volumes through t's close only.
Returns are simple daily returns; volatilities are daily (not annualized); dollar volume is in
USD; the market return is the equal-weighted mean of the day's cross-section. The sample data
covers one year, so windows are at most 126 sessions: 12-1 momentum, the 52-week high and
seasonality need more history than the sample has, and turnover needs shares outstanding,
which no offline source ships (relative volume stands in for it).

Ranking (Kelly, Pruitt & Su 2019): on each date, each characteristic's values across the
symbols that have it are ranked (average rank for ties) and mapped linearly onto
[-0.5, 0.5]: ``(rank - 1) / (n - 1) - 0.5``, so the lowest value is -0.5, the highest +0.5
and the median 0. A missing value is set to 0, the cross-sectional median.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MIN_HISTORY = 127  # sessions of closes a symbol needs before its first feature row (126 + today)

WINDOWS = {
    "ret_5d": 5,
    "ret_21d": 21,
    "mom_63d_skip5": 63,
    "vol_21d": 21,
    "vol_63d": 63,
    "max_ret_21d": 21,
    "log_dollar_volume_21d": 21,
    "amihud_21d": 21,
    "mom_126d_skip5": 126,
    "dist_high_126d": 126,
    "beta_63d": 63,
    "idio_vol_63d": 63,
    "skew_63d": 63,
    "hl_spread_21d": 21,
    "rel_volume_5_63d": 63,
}
NAMES = tuple(WINDOWS)


def raw_characteristics(bars: pd.DataFrame) -> pd.DataFrame:
    """Unranked characteristics, index (session_date, symbol), one column per name.

    ``bars`` needs ``symbol, session_date, high, low, close, volume``; rows appear only for a
    symbol's sessions with a close and at least :data:`MIN_HISTORY` sessions of history.
    """
    wide = {
        c: bars.pivot(index="session_date", columns="symbol", values=c).sort_index()
        for c in ("high", "low", "close", "volume")
    }
    close, volume = wide["close"], wide["volume"]
    ret = close / close.shift(1) - 1
    market = ret.mean(axis=1)
    market_var = market.rolling(63).var()
    beta_cov = ret.rolling(63).cov(market)
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
        "mom_126d_skip5": close.shift(5) / close.shift(126) - 1,
        "dist_high_126d": close / close.rolling(126).max() - 1,
        "beta_63d": beta_cov.div(market_var, axis=0),
        # Residual variance of the market regression: var(r) - cov(r, m)² / var(m).
        "idio_vol_63d": np.sqrt(
            (ret.rolling(63).var() - beta_cov.pow(2).div(market_var, axis=0)).clip(lower=0)
        ),
        "skew_63d": ret.rolling(63).skew(),
        "hl_spread_21d": ((wide["high"] - wide["low"]) / close).rolling(21).mean(),
        "rel_volume_5_63d": volume.rolling(5).mean() / volume.rolling(63).mean(),
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
