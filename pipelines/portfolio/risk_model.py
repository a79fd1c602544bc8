"""Ledoit–Wolf shrinkage covariance of daily simple returns, kept in factor form.

Ledoit & Wolf (2004) shrink the sample covariance S toward ``mu·I`` (``mu = trace(S)/N``):
``Σ = (1 - δ)·S + δ·mu·I``. With T observations S = XᵀX/T for the T×N demeaned returns X, so
``Σ = BᵀB + D`` with ``B = sqrt((1 - δ)/T)·X`` (T×N) and ``D = δ·mu·I``. The optimizer uses that
form: its size grows with T (the window) instead of N², so 500 assets stay small.
Units: daily variance of simple returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sklearn.covariance import ledoit_wolf_shrinkage

WINDOW_SESSIONS = 120


@dataclass(frozen=True)
class FactorCovariance:
    """``Σ = loadings.T @ loadings + diag(specific)`` over ``symbols``."""

    symbols: list[str]
    loadings: np.ndarray  # k × N
    specific: np.ndarray  # N, daily variances

    def matrix(self) -> pd.DataFrame:
        sigma = self.loadings.T @ self.loadings + np.diag(self.specific)
        return pd.DataFrame(sigma, index=self.symbols, columns=self.symbols)


def ledoit_wolf(returns: pd.DataFrame) -> FactorCovariance:
    """Shrinkage covariance of a T×N frame of daily returns with no missing values."""
    x = returns.to_numpy(dtype=float)
    x = x - x.mean(axis=0)
    t, n = x.shape
    delta = float(ledoit_wolf_shrinkage(x, assume_centered=True))
    mu = float(np.sum(x**2) / (t * n))  # trace(S) / N with S = XᵀX / T
    loadings = np.sqrt((1 - delta) / t) * x
    return FactorCovariance(list(returns.columns), loadings, np.full(n, delta * mu))


def trailing_returns(
    engine: sa.Engine, as_of: date, symbols: list[str], window: int = WINDOW_SESSIONS
) -> pd.DataFrame:
    """Daily simple returns of the last ``window`` sessions through ``as_of``'s close.

    Symbols missing any close in the window are dropped: the estimate needs a full panel.
    """
    with engine.connect() as conn:
        bars = pd.read_sql(
            sa.text(
                "SELECT symbol, session_date, close FROM bars WHERE symbol = ANY(:s) "
                "AND session_date BETWEEN :a AND :b"
            ),
            conn,
            params={"s": symbols, "a": as_of - timedelta(days=2 * window + 10), "b": as_of},
        )
    close = bars.pivot(index="session_date", columns="symbol", values="close").sort_index()
    return returns_from_closes(close, window)


def returns_from_closes(close: pd.DataFrame, window: int = WINDOW_SESSIONS) -> pd.DataFrame:
    """The last ``window`` daily simple returns of a sessions × symbols close panel.

    Symbols missing any close in the window are dropped: the estimate needs a full panel.
    """
    returns = (close / close.shift(1) - 1).iloc[1:].tail(window)
    return returns.dropna(axis=1, how="any")
