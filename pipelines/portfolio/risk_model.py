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

from pipelines import calendar
from pipelines.warehouse.bars import read_closes

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
    The read covers the ``window + 1`` exchange sessions the returns need; when the stored
    closes have fewer dates there (a gap in the data), the wider span of
    ``2·window + 10`` calendar days is read, so the last ``window + 1`` dates with closes are
    used either way.
    """
    wide = as_of - timedelta(days=2 * window + 10)
    exact = calendar.sessions(wide, as_of)[-(window + 1) :]
    close = read_closes(engine, exact[0] if exact else wide, as_of, symbols)
    if len(close) <= window:
        close = read_closes(engine, wide, as_of, symbols)
    return returns_from_closes(close, window)


def returns_from_closes(close: pd.DataFrame, window: int = WINDOW_SESSIONS) -> pd.DataFrame:
    """The last ``window`` daily simple returns of a sessions × symbols close panel.

    Symbols missing any close in the window are dropped: the estimate needs a full panel.
    """
    returns = (close / close.shift(1) - 1).iloc[1:].tail(window)
    return returns.dropna(axis=1, how="any")


def ipca(
    gamma_beta: np.ndarray,
    factors: np.ndarray,
    instruments: pd.DataFrame,
    returns: pd.DataFrame,
    min_specific: float = 1e-8,
) -> FactorCovariance:
    """The IPCA factor structure as a covariance: ``Σ = β Σ_f βᵀ + diag(d)``.

    * ``β = Z Γ_β`` (N×K): each asset's factor loadings from its instruments ``Z`` (N×L, the
      characteristics known at the rebalance date plus the constant, in the model's order);
    * ``Σ_f``: the sample covariance of the fitted factor returns (T_fit×K, daily);
    * ``d_i``: the variance of asset i's residual over the trailing returns (T×N), after
      removing each day's cross-sectional factor return ``f̂_t = (βᵀβ)⁻¹βᵀr_t`` estimated with
      today's loadings (an approximation: the loadings are held at their current value over the
      window), divided by ``1 − h_ii`` (asset i's leverage in that regression) so that it is
      unbiased for the idiosyncratic variance. Floored at ``min_specific``.

    Factor form: with ``Σ_f = LLᵀ`` (Cholesky), ``B = Lᵀβᵀ`` (K×N), so the optimizer sees K
    rows instead of the T of the Ledoit–Wolf form. Symbols are the intersection of
    ``instruments.index`` and ``returns.columns``.
    """
    symbols = [s for s in instruments.index if s in returns.columns]
    if len(symbols) < 2:
        raise ValueError("IPCA risk model needs instruments and returns for at least 2 symbols")
    beta = instruments.loc[symbols].to_numpy(dtype=float) @ gamma_beta  # N × K
    factor_cov = np.atleast_2d(np.cov(np.asarray(factors, dtype=float), rowvar=False))
    chol = np.linalg.cholesky(factor_cov + 1e-18 * np.eye(len(factor_cov)))
    r = returns[symbols].to_numpy(dtype=float)  # T × N
    f_hat = np.linalg.lstsq(beta, r.T, rcond=None)[0]  # K × T
    residual = r - (beta @ f_hat).T
    # The daily cross-sectional fit absorbs a share h_ii (asset i's leverage) of its own
    # noise: dividing by 1 − h_ii makes the residual variance unbiased for ε's variance.
    leverage = np.einsum("ik,kl,il->i", beta, np.linalg.pinv(beta.T @ beta), beta)
    specific = residual.var(axis=0, ddof=1) / np.maximum(1 - leverage, 1e-3)
    specific = np.maximum(specific, min_specific)
    return FactorCovariance(symbols, chol.T @ beta.T, specific)
