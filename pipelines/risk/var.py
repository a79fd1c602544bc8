"""Value at risk and conditional value at risk (expected shortfall) of a portfolio.

Sign convention: **a loss is a positive fraction of equity**. ``VaR = 0.03`` at 99% and a
1-day horizon means: on 99% of days the portfolio loses at most 3% of equity.
``CVaR`` is the mean loss on the days beyond VaR, so ``CVaR ≥ VaR``. Returns are daily simple
returns; weights are fractions of equity (portfolio return ``Σ wᵢrᵢ``, cash earning 0).

Methods (``VAR_METHOD``) and how the horizon ``h`` (sessions) enters:

* ``historical``: the portfolio's past daily returns, summed over *overlapping* h-day windows
  (``h = 1``: the returns themselves). Overlapping windows use all the data but are
  autocorrelated: the estimate's sampling error is larger than the window count suggests.
  ``VaR = −percentile(R_h, 1 − α)`` (linear interpolation, as numpy and empyrical);
  ``CVaR`` = minus the mean of the ``⌊(n−1)(1−α)⌋ + 1`` lowest (empyrical's definition).
* ``normal``: ``VaR = −(h·μ + √h·σ·z)`` with ``z = Φ⁻¹(1 − α)``;
  ``CVaR = −h·μ + √h·σ·φ(z)/(1 − α)`` (square-root-of-time scaling, i.i.d. returns).
* ``cornish_fisher``: the normal quantile corrected for the sample skewness S and excess
  kurtosis K (Cornish & Fisher 1938; Favre & Galeano 2002):
  ``z_cf = z + (z²−1)S/6 + (z³−3z)K/24 − (2z³−5z)S²/36``, then as ``normal`` with ``z_cf``;
  CVaR integrates that quantile function over the tail (``1−α`` split in 2,000 midpoints).
* ``monte_carlo``: draws from the factor model ``r = Bᵀf + √d∘ε`` (f, ε standard normal), with
  the expected returns as the mean; h-day draws use ``h·μ`` and ``√h`` (i.i.d. days), then
  the historical estimator on the draws. Seeded: the same inputs give the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from pipelines.portfolio.risk_model import FactorCovariance

METHODS = ("historical", "normal", "cornish_fisher", "monte_carlo")


@dataclass(frozen=True)
class VaRResult:
    method: str
    confidence: float
    horizon_days: int
    var: float  # loss, positive fraction of equity
    cvar: float


def historical(
    portfolio_returns: np.ndarray, confidence: float = 0.99, horizon_days: int = 1
) -> VaRResult:
    """Empirical VaR/CVaR of the portfolio's daily returns over overlapping h-day sums."""
    r = _horizon_sums(np.asarray(portfolio_returns, dtype=float), horizon_days)
    var, cvar = _empirical(r, confidence)
    return VaRResult("historical", confidence, horizon_days, var, cvar)


def normal(mean: float, sd: float, confidence: float = 0.99, horizon_days: int = 1) -> VaRResult:
    """Parametric normal VaR/CVaR from the daily mean and standard deviation."""
    z = stats.norm.ppf(1 - confidence)
    h = horizon_days
    var = -(h * mean + np.sqrt(h) * sd * z)
    cvar = -h * mean + np.sqrt(h) * sd * stats.norm.pdf(z) / (1 - confidence)
    return VaRResult("normal", confidence, h, float(var), float(cvar))


def cornish_fisher(
    portfolio_returns: np.ndarray, confidence: float = 0.99, horizon_days: int = 1
) -> VaRResult:
    """Normal VaR with the quantile corrected for sample skewness and excess kurtosis."""
    r = np.asarray(portfolio_returns, dtype=float)
    mean, sd = float(r.mean()), float(r.std(ddof=1))
    skew, kurt = float(stats.skew(r)), float(stats.kurtosis(r))  # kurtosis: excess
    h = horizon_days
    tail = 1 - confidence

    def loss(p: np.ndarray | float) -> np.ndarray:
        z = stats.norm.ppf(p)
        z_cf = (
            z
            + (z**2 - 1) * skew / 6
            + (z**3 - 3 * z) * kurt / 24
            - (2 * z**3 - 5 * z) * skew**2 / 36
        )
        return -(h * mean + np.sqrt(h) * sd * z_cf)

    var = float(loss(tail))
    grid = (np.arange(2000) + 0.5) / 2000 * tail
    cvar = float(np.mean(loss(grid)))
    return VaRResult("cornish_fisher", confidence, h, var, cvar)


def monte_carlo(
    weights: np.ndarray,
    risk: FactorCovariance,
    expected: np.ndarray | None = None,
    confidence: float = 0.99,
    horizon_days: int = 1,
    draws: int = 100_000,
    seed: int = 0,
) -> VaRResult:
    """VaR/CVaR of draws from the factor model (normal factors and specific returns)."""
    w = np.asarray(weights, dtype=float)
    rng = np.random.default_rng(seed)
    exposure = risk.loadings @ w  # k: the portfolio's factor exposure
    specific_sd = np.sqrt(np.maximum(risk.specific, 0.0)) * w
    f = rng.standard_normal((draws, len(exposure)))
    e = rng.standard_normal((draws, len(w)))
    daily = f @ exposure + e @ specific_sd
    mean = 0.0 if expected is None else float(np.asarray(expected, dtype=float) @ w)
    h = horizon_days
    var, cvar = _empirical(h * mean + np.sqrt(h) * daily, confidence)
    return VaRResult("monte_carlo", confidence, h, var, cvar)


def portfolio_var(
    method: str,
    weights: np.ndarray,
    asset_returns: np.ndarray,
    risk: FactorCovariance | None = None,
    confidence: float = 0.99,
    horizon_days: int = 1,
) -> VaRResult:
    """Dispatch on ``method`` for weights (N) and past daily asset returns (T×N)."""
    w = np.asarray(weights, dtype=float)
    r = np.asarray(asset_returns, dtype=float) @ w
    if method == "historical":
        return historical(r, confidence, horizon_days)
    if method == "normal":
        return normal(float(r.mean()), float(r.std(ddof=1)), confidence, horizon_days)
    if method == "cornish_fisher":
        return cornish_fisher(r, confidence, horizon_days)
    if method == "monte_carlo":
        if risk is None:
            raise ValueError("monte_carlo VaR needs the factor risk model")
        return monte_carlo(w, risk, None, confidence, horizon_days)
    raise ValueError(f"VAR_METHOD={method!r}: choose one of {METHODS}")


def _horizon_sums(r: np.ndarray, h: int) -> np.ndarray:
    if h == 1:
        return r
    if len(r) < h:
        raise ValueError(f"{len(r)} daily returns cannot make a {h}-day window")
    c = np.concatenate([[0.0], np.cumsum(r)])
    return c[h:] - c[:-h]


def _empirical(r: np.ndarray, confidence: float) -> tuple[float, float]:
    if len(r) == 0:
        raise ValueError("no returns: VaR is undefined")
    tail = 1 - confidence
    var = -float(np.percentile(r, 100 * tail))
    k = int((len(r) - 1) * tail + 1e-9)  # 1 − 0.9 is 0.0999…: do not lose a tail point
    cvar = -float(np.mean(np.partition(r, k)[: k + 1]))
    return var, cvar
