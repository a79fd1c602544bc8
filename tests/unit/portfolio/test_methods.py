"""Every optimizer against a closed form and against PyPortfolioOpt (the peer) where it has one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypfopt import EfficientFrontier, objective_functions

from pipelines.errors import ConfigurationError, OptimizationError
from pipelines.portfolio.constraints import Constraints
from pipelines.portfolio.optimizer import (
    PortfolioOptimizer,
    apply_min_trade,
    optimize,
    reachable_budget,
)
from pipelines.portfolio.risk_model import FactorCovariance, ipca, ledoit_wolf
from pipelines.portfolio.risk_parity import risk_contributions
from pipelines.portfolio.sectors import sector_map


def _factor_risk(n: int, k: int = 3, seed: int = 0) -> FactorCovariance:
    rng = np.random.default_rng(seed)
    loadings = rng.normal(0.0, 0.01, (k, n))
    specific = rng.uniform(1e-4, 4e-4, n)
    return FactorCovariance([f"S{i}" for i in range(n)], loadings, specific)


def _mu(risk: FactorCovariance, seed: int = 1, mean: float = 5e-4) -> pd.Series:
    rng = np.random.default_rng(seed)
    return pd.Series(rng.normal(mean, 1e-3, len(risk.symbols)), index=risk.symbols)


def test_max_sharpe_is_the_tangency_portfolio_when_no_bound_binds() -> None:
    risk = _factor_risk(6)
    sigma = risk.matrix().to_numpy()
    mu = pd.Series(sigma @ np.array([0.2, 0.1, 0.25, 0.15, 0.2, 0.1]), index=risk.symbols)
    tangency = np.linalg.solve(sigma, mu.to_numpy())
    tangency /= tangency.sum()
    got = optimize(mu, risk, Constraints(max_weight=1.0, budget=1.0), method="max_sharpe")
    np.testing.assert_allclose(got.to_numpy(), tangency, atol=1e-6)


def test_max_sharpe_with_caps_equals_pypfopt() -> None:
    risk = _factor_risk(15, seed=3)
    mu = _mu(risk, seed=4, mean=8e-4)
    sigma = risk.matrix()
    ef = EfficientFrontier(mu, sigma, weight_bounds=(0, 0.15))
    ef.max_sharpe(risk_free_rate=0.0)
    peer = np.array([ef.weights[i] for i in range(15)])
    ours = optimize(mu, risk, Constraints(max_weight=0.15, budget=1.0), method="max_sharpe")

    def sharpe(w: np.ndarray) -> float:
        return float(mu.to_numpy() @ w / np.sqrt(w @ sigma.to_numpy() @ w))

    assert sharpe(ours.to_numpy()) == pytest.approx(sharpe(peer), rel=1e-6)
    np.testing.assert_allclose(ours.to_numpy(), peer, atol=1e-4)


def test_min_variance_closed_form_and_pypfopt() -> None:
    base = _factor_risk(8, seed=5)
    risk = FactorCovariance(base.symbols, 0.3 * base.loadings, base.specific)
    sigma = risk.matrix().to_numpy()
    ones = np.ones(8)
    closed = np.linalg.solve(sigma, ones)
    closed /= closed.sum()
    assert (closed > 0).all()
    got = optimize(None, risk, Constraints(max_weight=1.0, budget=1.0), method="min_variance")
    np.testing.assert_allclose(got.to_numpy(), closed, atol=1e-6)

    capped = optimize(None, risk, Constraints(max_weight=0.14, budget=1.0), method="min_variance")
    ef = EfficientFrontier(None, risk.matrix(), weight_bounds=(0, 0.14))
    ef.min_volatility()
    assert capped.to_numpy() @ sigma @ capped.to_numpy() == pytest.approx(
        ef.weights @ sigma @ ef.weights, rel=1e-6
    )


def test_risk_parity_is_inverse_volatility_on_a_diagonal_covariance() -> None:
    vols = np.array([0.01, 0.02, 0.03, 0.04])
    risk = FactorCovariance(list("ABCD"), np.zeros((1, 4)), vols**2)
    got = optimize(None, risk, Constraints(max_weight=1.0, budget=0.98), method="risk_parity")
    expected = 0.98 * (1 / vols) / np.sum(1 / vols)
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-6)


def test_risk_parity_equalizes_risk_contributions() -> None:
    risk = _factor_risk(30, k=4, seed=7)
    got = optimize(None, risk, Constraints(max_weight=1.0, budget=1.0), method="risk_parity")
    contributions = risk_contributions(got.to_numpy(), risk.matrix().to_numpy())
    np.testing.assert_allclose(contributions, np.full(30, 1 / 30), rtol=1e-5)


def test_risk_parity_above_the_cap_fails_closed() -> None:
    vols = np.array([0.001, 0.02, 0.03, 0.04])
    risk = FactorCovariance(list("ABCD"), np.zeros((1, 4)), vols**2)
    with pytest.raises(OptimizationError, match="risk-parity portfolio"):
        optimize(None, risk, Constraints(max_weight=0.5, budget=1.0), method="risk_parity")


def test_mean_variance_with_turnover_cost_equals_pypfopt() -> None:
    n, delta, k, cap = 25, 10.0, 2e-4, 0.1
    risk = _factor_risk(n, seed=11)
    mu = _mu(risk, seed=12)
    w0 = pd.Series(np.full(n, 1 / n), index=risk.symbols)
    ours = optimize(
        mu,
        risk,
        Constraints(max_weight=cap, budget=1.0, turnover_penalty=k),
        w0,
        method="mean_variance",
        risk_aversion=delta / 2,
    )
    ef = EfficientFrontier(mu, risk.matrix(), weight_bounds=(0, cap))
    ef.add_objective(objective_functions.transaction_cost, w_prev=w0.to_numpy(), k=k)
    ef.max_quadratic_utility(risk_aversion=delta)
    sigma = risk.matrix().to_numpy()

    def utility(w: np.ndarray) -> float:
        return float(mu.to_numpy() @ w - delta / 2 * w @ sigma @ w - k * np.abs(w - w0).sum())

    assert utility(ours.to_numpy()) == pytest.approx(utility(ef.weights), abs=1e-8)
    np.testing.assert_allclose(ours.to_numpy(), ef.weights, atol=1e-4)


def test_trade_caps_are_the_box_pypfopt_solves() -> None:
    """Capping each trade at cᵢ is the box ``max(0, w₀ − c) ≤ w ≤ min(cap, w₀ + c)``."""
    n, delta, cap = 25, 10.0, 0.1
    risk = _factor_risk(n, seed=13)
    mu = _mu(risk, seed=14)
    w0 = pd.Series(np.full(n, 1 / n), index=risk.symbols)
    caps = pd.Series(np.random.default_rng(15).uniform(0.005, 0.03, n), index=risk.symbols)
    c = Constraints(max_weight=cap, budget=1.0)
    free = optimize(mu, risk, c, w0, method="mean_variance", risk_aversion=delta / 2)
    assert ((free - w0).abs() > caps + 1e-6).any()  # the caps bind
    ours = optimize(
        mu, risk, c, w0, method="mean_variance", risk_aversion=delta / 2, trade_caps=caps
    )
    bounds = list(zip(np.maximum(w0 - caps, 0.0), np.minimum(w0 + caps, cap), strict=True))
    ef = EfficientFrontier(mu, risk.matrix(), weight_bounds=bounds)
    ef.max_quadratic_utility(risk_aversion=delta)
    sigma = risk.matrix().to_numpy()

    def utility(w: np.ndarray) -> float:
        return float(mu.to_numpy() @ w - delta / 2 * w @ sigma @ w)

    assert utility(ours.to_numpy()) == pytest.approx(utility(ef.weights), abs=1e-8)
    np.testing.assert_allclose(ours.to_numpy(), ef.weights, atol=1e-4)


@pytest.mark.parametrize("method", ["mean_variance", "max_sharpe", "min_variance"])
def test_trade_caps_hold_and_change_without_recompiling(method: str) -> None:
    n = 20
    risk = _factor_risk(n, seed=16)
    w0 = pd.Series(np.r_[np.full(10, 0.1), np.zeros(10)], index=risk.symbols)
    c = Constraints(max_weight=0.2, budget=1.0)
    optimizer = PortfolioOptimizer(method)
    for seed, size in [(17, 0.02), (18, 0.05)]:
        caps = pd.Series(size, index=risk.symbols)
        w = optimizer.optimize(_mu(risk, seed=seed, mean=1e-3), risk, c, w0, 2.0, caps)
        assert ((w - w0).abs() <= size + 1e-7).all() and w.sum() == pytest.approx(1.0)
    assert len(optimizer._cache) == 1 and next(iter(optimizer._cache.values())).solves == 2
    loose = pd.Series(0.2 + w0, index=risk.symbols)  # no cap can bind: the uncapped problem
    optimizer.optimize(_mu(risk, seed=19, mean=1e-3), risk, c, w0, 2.0, loose)
    assert optimizer.compiled(risk.symbols, 3, c).solves == 1


def test_a_budget_out_of_one_sessions_reach_is_walked_toward() -> None:
    c = Constraints(max_weight=0.2, budget=0.98)
    w0, caps = np.zeros(5), np.full(5, 0.1)  # all cash; five trades of at most 0.1 each
    assert reachable_budget(c, w0, caps).budget == pytest.approx(0.5)
    assert reachable_budget(c, np.full(5, 0.2), caps).budget == 0.98  # within reach
    risk = _factor_risk(5, seed=19)
    w = optimize(_mu(risk), risk, c, pd.Series(w0, index=risk.symbols),
                 trade_caps=pd.Series(caps, index=risk.symbols))  # fmt: skip
    np.testing.assert_allclose(w.to_numpy(), 0.1, atol=1e-7)


def test_long_short_is_dollar_neutral_within_gross_and_caps() -> None:
    risk = _factor_risk(20, seed=2)
    c = Constraints(mode="long_short", max_weight=0.1, budget=0.0, gross_leverage=1.5)
    w = optimize(_mu(risk), risk, c, method="mean_variance", risk_aversion=1.0)
    assert w.sum() == pytest.approx(0.0, abs=1e-7)
    assert w.abs().sum() <= 1.5 + 1e-6
    assert w.abs().max() <= 0.1 + 1e-9
    assert (w < -1e-4).any() and (w > 1e-4).any()


def test_long_short_needs_gross_leverage() -> None:
    risk = _factor_risk(5)
    with pytest.raises(OptimizationError, match="GROSS_LEVERAGE"):
        optimize(_mu(risk), risk, Constraints(mode="long_short", max_weight=0.2, budget=0.0))


@pytest.mark.parametrize("method", ["mean_variance", "max_sharpe", "min_variance"])
def test_sector_factor_and_turnover_bounds_hold(method: str) -> None:
    n = 20
    risk = _factor_risk(n, seed=9)
    sectors = {
        s: ("Tech" if i < 8 else "Energy" if i < 14 else "Utilities")
        for i, s in enumerate(risk.symbols)
    }
    loadings = np.random.default_rng(4).normal(0, 1, (n, 2))
    w0 = pd.Series(1 / n, index=risk.symbols)
    c = Constraints(
        max_weight=0.2,
        budget=1.0,
        sectors=sectors,
        sector_max_weight=0.4,
        factor_loadings=loadings,
        factor_bound=0.3,
        turnover_limit=0.5,
    )
    w = optimize(_mu(risk, mean=1e-3), risk, c, w0, method=method, risk_aversion=2.0)
    by_sector = w.groupby(pd.Series(sectors)).sum()
    assert (by_sector <= 0.4 + 1e-7).all()
    assert np.all(np.abs(loadings.T @ w.to_numpy()) <= 0.3 + 1e-7)
    assert (w - w0).abs().sum() <= 0.5 + 1e-7


def test_infeasible_sector_bounds_raise_and_produce_nothing() -> None:
    risk = _factor_risk(6)
    sectors = {s: ("A" if i < 3 else "B") for i, s in enumerate(risk.symbols)}
    c = Constraints(max_weight=0.5, budget=1.0, sectors=sectors, sector_max_weight=0.4)
    with pytest.raises(OptimizationError, match="infeasible"):
        optimize(_mu(risk), risk, c, method="mean_variance", risk_aversion=1.0)


def test_max_sharpe_without_a_positive_return_is_infeasible() -> None:
    risk = _factor_risk(5)
    mu = pd.Series(-1e-3, index=risk.symbols)
    with pytest.raises(OptimizationError, match="status"):
        optimize(mu, risk, Constraints(max_weight=1.0, budget=1.0), method="max_sharpe")


def test_max_sharpe_refuses_a_turnover_penalty() -> None:
    risk = _factor_risk(5)
    with pytest.raises(ConfigurationError, match="TURNOVER_LIMIT"):
        optimize(
            _mu(risk), risk, Constraints(max_weight=1.0, turnover_penalty=1e-4), method="max_sharpe"
        )


def test_unknown_method_and_solver_are_refused() -> None:
    risk = _factor_risk(5)
    with pytest.raises(ConfigurationError, match="OPTIMIZER"):
        PortfolioOptimizer("black_litterman")
    with pytest.raises(OptimizationError, match="not installed"):
        optimize(_mu(risk), risk, Constraints(max_weight=1.0), solver="GUROBI")


def test_highs_is_refused_for_quadratic_problems() -> None:
    risk = _factor_risk(5)
    with pytest.raises(OptimizationError, match="HIGHS"):
        optimize(_mu(risk), risk, Constraints(max_weight=1.0), solver="HIGHS")


@pytest.mark.parametrize("solver", ["OSQP", "SCS"])
def test_other_solvers_agree_with_clarabel(solver: str) -> None:
    risk = _factor_risk(15, seed=21)
    mu, c = _mu(risk), Constraints(max_weight=0.15, budget=0.98)
    reference = optimize(mu, risk, c, risk_aversion=3.0, solver="CLARABEL")
    other = optimize(mu, risk, c, risk_aversion=3.0, solver=solver)
    np.testing.assert_allclose(other.to_numpy(), reference.to_numpy(), atol=2e-3)


def test_the_compiled_problem_is_reused_across_solves() -> None:
    risk = _factor_risk(30, seed=1)
    c = Constraints(max_weight=0.1, budget=1.0, turnover_penalty=1e-4)
    optimizer = PortfolioOptimizer("mean_variance")
    first = optimizer.optimize(_mu(risk, seed=1), risk, c, risk_aversion=2.0)
    compiled = optimizer.compiled(risk.symbols, 3, c)
    second = optimizer.optimize(_mu(risk, seed=2), risk, c, first, risk_aversion=4.0)
    assert optimizer.compiled(risk.symbols, 3, c) is compiled and compiled.solves == 2
    fresh = PortfolioOptimizer("mean_variance").optimize(_mu(risk, seed=2), risk, c, first, 4.0)
    np.testing.assert_allclose(second.to_numpy(), fresh.to_numpy(), atol=1e-7)
    assert not np.allclose(first.to_numpy(), second.to_numpy(), atol=1e-4)


def test_min_trade_keeps_small_trades_at_their_current_weight() -> None:
    c = Constraints(max_weight=1.0, budget=1.0, min_trade=0.01)
    current = np.array([0.30, 0.30, 0.40, 0.00])
    target = np.array([0.305, 0.20, 0.395, 0.10])  # trades: +0.005 (dropped), −0.1, −0.005, +0.1
    got = apply_min_trade(target, current, c)
    # 0.30 and 0.40 stay; invested would be 1.0 + 0.005 − 0.005 = 1.0: no shrinking needed
    np.testing.assert_allclose(got, [0.30, 0.20, 0.40, 0.10])
    target = np.array([0.295, 0.20, 0.405, 0.10])  # dropping the sell of 0.005 overspends
    got = apply_min_trade(
        target, current, Constraints(max_weight=1.0, budget=0.995, min_trade=0.01)
    )
    assert got.sum() == pytest.approx(0.995)
    assert got[3] == pytest.approx(0.10 - 0.005)  # the only buy kept absorbs the excess


def test_ipca_risk_model_is_the_factor_structure() -> None:
    rng = np.random.default_rng(0)
    n, l_, k, t = 12, 4, 2, 2000
    gamma_beta = np.linalg.qr(rng.normal(size=(l_, k)))[0]
    z = pd.DataFrame(rng.normal(size=(n, l_)), index=[f"S{i}" for i in range(n)])
    factors = rng.normal(0, 0.01, (t, k))
    beta = z.to_numpy() @ gamma_beta
    eps = rng.normal(0, 0.02, (t, n))
    returns = pd.DataFrame(factors @ beta.T + eps, columns=z.index)
    risk = ipca(gamma_beta, factors, z, returns)
    expected = beta @ np.cov(factors, rowvar=False) @ beta.T + np.diag(risk.specific)
    np.testing.assert_allclose(risk.matrix().to_numpy(), expected, rtol=1e-9, atol=1e-15)
    assert risk.loadings.shape == (k, n)
    np.testing.assert_allclose(risk.specific, 0.02**2, rtol=0.15)  # unbiased for ε's variance


def test_sector_map_reads_the_sample_package() -> None:
    sectors = sector_map(["AAPL", "XOM", "BRK.B", "NOPE"])
    assert sectors == {"AAPL": "Information Technology", "XOM": "Energy", "BRK.B": "Financials"}


def test_ledoit_wolf_problem_solves_with_window_rows() -> None:
    rng = np.random.default_rng(0)
    returns = pd.DataFrame(rng.normal(5e-4, 0.02, (60, 40)), columns=[f"S{i}" for i in range(40)])
    risk = ledoit_wolf(returns)
    w = optimize(None, risk, Constraints(max_weight=0.05, budget=1.0), method="min_variance")
    assert w.sum() == pytest.approx(1.0, abs=1e-7) and w.max() <= 0.05 + 1e-9


@settings(max_examples=8, deadline=None)
@given(
    n=st.integers(min_value=6, max_value=30),
    cap=st.floats(min_value=0.05, max_value=0.3),
    gross=st.floats(min_value=0.5, max_value=3.0),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_long_short_invariants(n: int, cap: float, gross: float, seed: int) -> None:
    risk = _factor_risk(n, seed=seed)
    c = Constraints(mode="long_short", max_weight=cap, budget=0.0, gross_leverage=gross)
    w = optimize(_mu(risk, seed=seed), risk, c, method="mean_variance", risk_aversion=2.0)
    assert abs(w.sum()) <= 1e-6
    assert w.abs().max() <= cap + 1e-9 and w.abs().sum() <= gross + 1e-6
