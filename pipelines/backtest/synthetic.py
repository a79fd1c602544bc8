"""Synthetic daily bars with a planted factor structure, for long tests and the benchmark.

Daily simple returns ``r_{i,t} = b_iᵀ f_t + s_{i,t} + ε_{i,t}``: K market-wide factors with
positive means (the first a market factor every asset loads on), asset loadings ``b_i``, and a
planted *predictable* part ``s_{i,t}`` that the characteristics can find: a short-term
reversal of the last 5 sessions' return and a slow AR(1) drift (momentum-like persistence).
Idiosyncratic noise ε has a per-asset volatility. Prices start at 20–200 USD; opens gap from
the previous close; highs and lows bracket open and close; volumes are log-normal around a
per-asset level. A fixed seed gives the same bars bit for bit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines import calendar
from pipelines.backtest.data import MarketData


def synthetic_market(
    n_assets: int = 50,
    n_years: float = 3.0,
    n_factors: int = 3,
    seed: int = 0,
    start: str = "2010-01-04",
    reversal: float = 0.02,
    drift_sd: float = 0.0004,
) -> MarketData:
    """``n_assets`` symbols (``S0000``…) over ``n_years`` × 252 NYSE sessions from ``start``."""
    rng = np.random.default_rng(seed)
    first = pd.Timestamp(start).date()
    days = calendar.sessions(first, first + pd.Timedelta(days=int(n_years * 366) + 20))
    days = days[: int(round(n_years * 252))]
    t, n = len(days), n_assets
    factors = rng.normal(0.0, 0.008, (t, n_factors)) + 0.0002
    loadings = rng.normal(0.0, 0.5, (n, n_factors))
    loadings[:, 0] = rng.uniform(0.6, 1.4, n)  # everyone is exposed to the market
    idio_vol = rng.uniform(0.008, 0.025, n)
    returns = np.empty((t, n))
    drift = rng.normal(0.0, drift_sd, n)
    for day in range(t):
        drift = 0.995 * drift + np.sqrt(1 - 0.995**2) * rng.normal(0.0, drift_sd, n)
        past5 = returns[max(0, day - 5) : day].sum(axis=0) if day else np.zeros(n)
        signal = drift - reversal * (past5 - past5.mean())
        returns[day] = loadings @ factors[day] + signal + idio_vol * rng.standard_normal(n)
    returns = np.clip(returns, -0.5, 0.5)
    close = rng.uniform(20, 200, n) * np.cumprod(1 + returns, axis=0)
    gap = np.exp(rng.normal(0.0, 0.003, (t, n)))
    prev = np.vstack([close[:1] / (1 + returns[:1]), close[:-1]])
    open_ = prev * gap
    span = np.abs(rng.normal(0.0, 0.008, (t, n)))
    high = np.maximum(open_, close) * (1 + span)
    low = np.minimum(open_, close) * (1 - span)
    level = rng.uniform(2e5, 5e6, n)
    volume = np.round(level * np.exp(rng.normal(0.0, 0.3, (t, n))))
    symbols = [f"S{i:04d}" for i in range(n)]
    index = pd.Index(days, name="session_date")

    def panel(values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=index, columns=pd.Index(symbols, name="symbol"))

    return MarketData(
        {
            "open": panel(open_),
            "high": panel(high),
            "low": panel(low),
            "close": panel(close),
            "volume": panel(volume),
        }
    )
