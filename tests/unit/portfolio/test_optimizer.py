from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize
from sklearn.covariance import LedoitWolf

from pipelines.errors import OptimizationError
from pipelines.portfolio.mean_variance import optimize
from pipelines.portfolio.risk_model import FactorCovariance, ledoit_wolf


def _random_risk(n: int, t: int = 60, seed: int = 0) -> FactorCovariance:
    rng = np.random.default_rng(seed)
    returns = pd.DataFrame(rng.normal(0.0005, 0.02, (t, n)), columns=[f"S{i}" for i in range(n)])
    return ledoit_wolf(returns)


def test_ledoit_wolf_factor_form_equals_sklearn() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(0, 0.02, (120, 40)) @ rng.normal(1, 0.3, (40, 40)) / 10
    ours = ledoit_wolf(pd.DataFrame(x)).matrix().to_numpy()
    np.testing.assert_allclose(ours, LedoitWolf().fit(x).covariance_, rtol=1e-10, atol=1e-14)


def test_diagonal_problem_matches_the_kkt_closed_form() -> None:
    mu = np.array([0.010, 0.008, 0.006])
    d = np.array([0.04, 0.02, 0.03])
    gamma, budget = 2.0, 0.9
    risk = FactorCovariance(["A", "B", "C"], np.zeros((1, 3)), d)
    # Interior optimum: w_i = (mu_i - lam) / (2 gamma d_i), with lam set by sum(w) = budget.
    inv = 1 / (2 * gamma * d)
    lam = (np.sum(mu * inv) - budget) / np.sum(inv)
    expected = (mu - lam) * inv
    assert (expected > 0).all() and (expected < 1).all()
    got = optimize(pd.Series(mu, index=["A", "B", "C"]), risk, gamma, max_weight=1.0, budget=budget)
    np.testing.assert_allclose(got.to_numpy(), expected, atol=1e-6)


def test_capped_problem_agrees_with_scipy() -> None:
    n, gamma, cap, budget = 20, 3.0, 0.12, 0.98
    risk = _random_risk(n)
    mu = pd.Series(np.random.default_rng(1).normal(0.001, 0.002, n), index=risk.symbols)
    sigma = risk.matrix().to_numpy()

    def negative_utility(w: np.ndarray) -> float:
        return -(mu.to_numpy() @ w - gamma * w @ sigma @ w)

    peer = minimize(
        negative_utility,
        np.full(n, budget / n),
        method="SLSQP",
        bounds=[(0, cap)] * n,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - budget}],
        options={"ftol": 1e-14, "maxiter": 1000},
    )
    ours = optimize(mu, risk, gamma, max_weight=cap, budget=budget)
    assert negative_utility(ours.to_numpy()) == pytest.approx(peer.fun, abs=1e-9)
    np.testing.assert_allclose(ours.to_numpy(), peer.x, atol=1e-4)


def test_caps_that_cannot_hold_the_budget_are_refused_before_solving() -> None:
    risk = _random_risk(5)
    with pytest.raises(OptimizationError, match="raise MAX_WEIGHT"):
        optimize(pd.Series(0.001, index=risk.symbols), risk, 1.0, max_weight=0.1, budget=0.98)


def test_missing_expected_return_is_refused() -> None:
    risk = _random_risk(5)
    with pytest.raises(OptimizationError, match="no expected return"):
        optimize(pd.Series(0.001, index=risk.symbols[:4]), risk, 1.0, max_weight=0.5, budget=1)


@settings(max_examples=10, deadline=None)
@given(
    n=st.integers(min_value=5, max_value=40),
    cap=st.floats(min_value=0.05, max_value=0.5),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_weights_respect_budget_and_caps(n: int, cap: float, seed: int) -> None:
    budget = min(0.98, cap * n)
    risk = _random_risk(n, seed=seed)
    mu = pd.Series(np.random.default_rng(seed).normal(0, 0.01, n), index=risk.symbols)
    weights = optimize(mu, risk, 5.0, max_weight=cap, budget=budget)
    assert weights.sum() == pytest.approx(budget, abs=1e-6)
    assert (weights >= 0).all() and (weights <= cap + 1e-9).all()
