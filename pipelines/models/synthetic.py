"""Synthetic panels with a planted IPCA structure, for tests and benchmarks.

Characteristics are persistent (AR(1) with ρ = 0.9 per asset and characteristic), ranked
cross-sectionally into [-0.5, 0.5] each date, with a constant as the last column. Returns are
``r_{i,t+1} = z_{i,t}' (α·γ + Γ_β f_{t+1}) + ε`` with a known orthonormal Γ_β, γ a unit
vector orthogonal to it (α = 0 by default: no anomaly), factors with positive
means, and noise scaled so the population R² is ``r2``. A fraction of rows is dropped at
random (an unbalanced panel).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Panel:
    z: np.ndarray  # n × L characteristics (rows of all dates stacked, date-sorted)
    r: np.ndarray  # n next-period returns
    date_codes: np.ndarray  # n, 0..T-1
    asset_codes: np.ndarray  # n, 0..N-1
    gamma_beta: np.ndarray  # L × K, the truth
    factors: np.ndarray  # T × K, the truth
    n_dates: int


def planted_panel(
    n_assets: int,
    n_dates: int,
    n_chars: int,
    n_factors: int,
    r2: float = 0.2,
    missing: float = 0.1,
    seed: int = 0,
    alpha: float = 0.0,
) -> Panel:
    rng = np.random.default_rng(seed)
    raw = np.empty((n_dates, n_assets, n_chars - 1))
    raw[0] = rng.standard_normal((n_assets, n_chars - 1))
    for t in range(1, n_dates):
        raw[t] = 0.9 * raw[t - 1] + np.sqrt(1 - 0.81) * rng.standard_normal(raw[t].shape)
    ranks = raw.argsort(axis=1).argsort(axis=1) / (n_assets - 1) - 0.5
    z = np.concatenate([ranks, np.ones((n_dates, n_assets, 1))], axis=2)
    gamma, _ = np.linalg.qr(rng.standard_normal((n_chars, n_factors)))
    factors = 0.05 * rng.standard_normal((n_dates, n_factors)) + 0.02
    signal = np.einsum("tnl,lk,tk->tn", z, gamma, factors)
    if alpha:  # an anomaly: characteristics that pay without factor exposure
        direction = rng.standard_normal(n_chars)
        direction -= gamma @ (gamma.T @ direction)
        signal += alpha * z @ (direction / np.linalg.norm(direction))
    noise_sd = np.sqrt(signal.var() * (1 - r2) / r2)
    r = signal + noise_sd * rng.standard_normal(signal.shape)
    keep = rng.random((n_dates, n_assets)) >= missing
    dates, assets = np.nonzero(keep)
    return Panel(z[dates, assets], r[dates, assets], dates, assets, gamma, factors, n_dates)


def projection_r2(estimated: np.ndarray, truth: np.ndarray) -> float:
    """Share of ``truth``'s columns that ``estimated``'s column span explains."""
    q, _ = np.linalg.qr(estimated)
    residual = truth - q @ (q.T @ truth)
    return float(1 - np.sum(residual**2) / np.sum(truth**2))
