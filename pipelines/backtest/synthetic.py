"""Synthetic daily bars: a planted factor structure for long tests and the benchmark
(:func:`synthetic_market`), and characteristic-driven markets with and without signal for the
pipeline's positive and null controls (:func:`planted_market`).

:func:`synthetic_market`'s daily simple returns ``r_{i,t} = b_iᵀ f_t + s_{i,t} + ε_{i,t}``:
K market-wide factors with positive means (the first a market factor every asset loads on),
asset loadings ``b_i``, and a planted *predictable* part ``s_{i,t}`` that the characteristics
can find: a short-term reversal of the last 5 sessions' return and a slow AR(1) drift
(momentum-like persistence). Idiosyncratic noise ε has a per-asset volatility. Prices start at
20–200 USD; opens gap from the previous close; highs and lows bracket open and close; volumes
are log-normal around a per-asset level. A fixed seed gives the same bars bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from pipelines import calendar
from pipelines.backtest.data import MarketData
from pipelines.features import characteristics


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
    days = _sessions(start, n_years)
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
    return _market(rng, days, returns)


#: The planted market's expected next-session return (daily, simple) per unit of a
#: characteristic's cross-sectional rank in [-0.5, 0.5] (the feature store's ranking): the
#: top-ranked symbol expects half the premium more than the median, the bottom one half less.
PLANTED_PREMIA = {"mom_126d_skip5": 0.0020, "vol_21d": -0.0012}


def planted_market(
    n_assets: int = 500,
    n_years: float = 10.0,
    premia: Mapping[str, float] = PLANTED_PREMIA,
    n_factors: int = 3,
    seed: int = 0,
    start: str = "2010-01-04",
) -> MarketData:
    """Bars whose expected returns are driven by characteristics, for the pipeline's controls.

    ``r_{i,t+1} = Σ_c premia[c] · rank_c(i, t) + b_iᵀ f_{t+1} + ε_{i,t+1}``: ``rank_c`` is
    characteristic ``c`` (one of :data:`PLANTED_CHARACTERISTICS`) computed from the bars
    through t's close exactly as :mod:`pipelines.features.characteristics` computes and ranks
    it, from the first session it has features on; the K factors have mean zero (no premium a
    long-only book earns by just holding), idiosyncratic volatility is per asset. With every
    premium zero it is the *null* market: the same draws, so the same factors and noise, and
    no signal. A fixed seed gives the same bars bit for bit.
    """
    unknown = sorted(set(premia) - set(PLANTED_CHARACTERISTICS))
    if unknown:
        raise ValueError(f"cannot plant {unknown}: choose from {sorted(PLANTED_CHARACTERISTICS)}")
    rng = np.random.default_rng(seed)
    days = _sessions(start, n_years)
    t, n = len(days), n_assets
    factors = rng.normal(0.0, 0.008, (t, n_factors))
    loadings = rng.normal(0.0, 0.5, (n, n_factors))
    loadings[:, 0] = rng.uniform(0.6, 1.4, n)
    idio_vol = rng.uniform(0.008, 0.025, n)
    noise = rng.standard_normal((t, n))
    returns = np.empty((t, n))
    growth = np.empty((t, n))  # close / first close
    for day in range(t):
        expected = np.zeros(n)
        if day - 1 >= characteristics.MIN_HISTORY - 1:  # features exist at yesterday's close
            for name, premium in premia.items():
                raw = PLANTED_CHARACTERISTICS[name](growth[:day])
                expected += premium * ((stats.rankdata(raw) - 1) / (n - 1) - 0.5)
        step = expected + loadings @ factors[day] + idio_vol * noise[day]
        returns[day] = np.clip(step, -0.5, 0.5)
        growth[day] = (growth[day - 1] if day else 1.0) * (1 + returns[day])
    return _market(rng, days, returns)


def _momentum_126_skip5(growth: np.ndarray) -> np.ndarray:
    return growth[-6] / growth[-127] - 1


def _volatility_21(growth: np.ndarray) -> np.ndarray:
    return np.diff(np.log(growth[-22:]), axis=0).std(axis=0, ddof=1)


#: What :func:`planted_market` can plant: a characteristic at the last row of a growth path
#: (sessions × assets), as :func:`pipelines.features.characteristics.raw_characteristics`
#: defines it.
PLANTED_CHARACTERISTICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mom_126d_skip5": _momentum_126_skip5,
    "vol_21d": _volatility_21,
}


def _sessions(start: str, n_years: float) -> list:
    first = pd.Timestamp(start).date()
    days = calendar.sessions(first, first + pd.Timedelta(days=int(n_years * 366) + 20))
    return days[: int(round(n_years * 252))]


def _market(rng: np.random.Generator, days: list, returns: np.ndarray) -> MarketData:
    """OHLCV panels from daily simple returns (sessions × assets), with ``rng``'s draws."""
    t, n = returns.shape
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
