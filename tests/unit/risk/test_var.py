from __future__ import annotations

import empyrical
import numpy as np
import pytest
from scipy import stats

from pipelines.portfolio.risk_model import FactorCovariance
from pipelines.risk import var


def test_normal_var_is_the_normal_quantile() -> None:
    # 99%, σ = 1%, μ = 0: VaR = 2.3263%, CVaR = φ(2.3263)/0.01 · 1% = 2.6652%
    r = var.normal(0.0, 0.01, 0.99, 1)
    assert r.var == pytest.approx(0.0232635, rel=1e-5)
    assert r.cvar == pytest.approx(0.0266521, rel=1e-5)
    # 10 days, μ = 0.05%: VaR = −10·0.0005 + √10·0.01·2.32635
    r10 = var.normal(0.0005, 0.01, 0.99, 10)
    assert r10.var == pytest.approx(-0.005 + np.sqrt(10) * 0.0232635, rel=1e-5)


def test_historical_matches_a_hand_example_and_empyrical() -> None:
    r = np.array([-0.05, -0.03, -0.02, -0.01, 0.0, 0.01, 0.01, 0.02, 0.03, 0.04, 0.05])
    got = var.historical(r, confidence=0.9)
    # 10th percentile of 11 points: position 1.0 → −0.03; tail k = ⌊10·0.1⌋ = 1 → mean(−.05, −.03)
    assert got.var == pytest.approx(0.03)
    assert got.cvar == pytest.approx(0.04)
    sample = np.random.default_rng(0).standard_t(4, 2000) * 0.01
    got = var.historical(sample, confidence=0.95)
    assert got.var == pytest.approx(-empyrical.value_at_risk(sample, cutoff=0.05), rel=1e-12)
    assert got.cvar == pytest.approx(
        -empyrical.conditional_value_at_risk(sample, cutoff=0.05), rel=1e-12
    )


def test_historical_horizon_uses_overlapping_sums() -> None:
    r = np.array([0.01, -0.02, 0.03, -0.04, 0.0])
    got = var.historical(r, confidence=0.75, horizon_days=2)
    sums = np.array([-0.01, 0.01, -0.01, -0.04])
    assert got.var == pytest.approx(-np.percentile(sums, 25))


def test_cornish_fisher_is_normal_without_skew_or_kurtosis_and_fattens_the_tail() -> None:
    rng = np.random.default_rng(1)
    r = rng.standard_normal(200_000) * 0.01
    cf = var.cornish_fisher(r, 0.99)
    nv = var.normal(float(r.mean()), float(r.std(ddof=1)), 0.99)
    assert cf.var == pytest.approx(nv.var, rel=0.02)
    assert cf.cvar == pytest.approx(nv.cvar, rel=0.02)
    fat = stats.t.rvs(5, size=200_000, random_state=2) * 0.01
    cf_fat = var.cornish_fisher(fat, 0.99)
    normal_fat = var.normal(float(fat.mean()), float(fat.std(ddof=1)), 0.99)
    assert cf_fat.var > normal_fat.var


def test_cornish_fisher_hand_formula() -> None:
    r = np.random.default_rng(3).lognormal(0, 0.5, 5000) * 0.01 - 0.011
    m, s = r.mean(), r.std(ddof=1)
    sk, ku = stats.skew(r), stats.kurtosis(r)
    z = stats.norm.ppf(0.05)
    zcf = z + (z**2 - 1) * sk / 6 + (z**3 - 3 * z) * ku / 24 - (2 * z**3 - 5 * z) * sk**2 / 36
    assert var.cornish_fisher(r, 0.95).var == pytest.approx(-(m + s * zcf), rel=1e-12)


def test_monte_carlo_from_the_factor_model_matches_the_normal_answer() -> None:
    rng = np.random.default_rng(0)
    risk = FactorCovariance(["A", "B", "C"], rng.normal(0, 0.01, (2, 3)), np.full(3, 1e-4))
    w = np.array([0.5, 0.3, 0.2])
    sd = float(np.sqrt(w @ risk.matrix().to_numpy() @ w))
    mc = var.monte_carlo(w, risk, confidence=0.99, horizon_days=5, draws=400_000)
    exact = var.normal(0.0, sd, 0.99, 5)
    assert mc.var == pytest.approx(exact.var, rel=0.02)
    assert mc.cvar == pytest.approx(exact.cvar, rel=0.03)
    assert mc == var.monte_carlo(w, risk, confidence=0.99, horizon_days=5, draws=400_000)


def test_factor_shocks_are_plus_minus_k_sigma_on_principal_factors() -> None:
    import pandas as pd

    from pipelines.risk.stress import factor_shocks

    # one factor moving A and B together with σ = 2%: a 3σ shock moves them by 6%
    risk = FactorCovariance(["A", "B", "C"], np.array([[0.02, 0.02, 0.0]]), np.full(3, 1e-4))
    w = pd.Series([0.5, 0.25, 0.25], index=["A", "B", "C"])
    shocks = {r.scenario: r.loss for r in factor_shocks(w, risk, sigmas=3.0)}
    assert shocks == pytest.approx({"pc1_up_3sd": -0.06 * 0.75, "pc1_down_3sd": 0.06 * 0.75})
