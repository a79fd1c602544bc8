from __future__ import annotations

import numpy as np
import pytest

from pipelines.backtest import montecarlo


@pytest.fixture
def returns() -> np.ndarray:
    return np.random.default_rng(5).normal(0.0006, 0.01, 750)


def test_same_seed_same_paths_and_a_path_does_not_depend_on_how_many(returns) -> None:
    a = montecarlo.daily_returns(returns, n_paths=50, seed=11)
    b = montecarlo.daily_returns(returns, n_paths=50, seed=11)
    c = montecarlo.daily_returns(returns, n_paths=20, seed=11)
    d = montecarlo.daily_returns(returns, n_paths=50, seed=12)
    np.testing.assert_array_equal(a.paths, b.paths)
    np.testing.assert_array_equal(a.paths[:20], c.paths)
    assert not np.array_equal(a.paths, d.paths)


def test_blocks_have_the_mean_length_asked_for() -> None:
    rng = np.random.default_rng(0)
    index = montecarlo.stationary_indices(1_000_000, 200_000, 10.0, rng)
    breaks = np.count_nonzero(np.diff(index) != 1)
    assert 200_000 / (breaks + 1) == pytest.approx(10.0, rel=0.05)


def test_intervals_bracket_the_sample(returns) -> None:
    mc = montecarlo.daily_returns(returns, n_paths=400, block=5, seed=1)
    ci = mc.intervals(0.95)
    sample_sharpe = returns.mean() / returns.std(ddof=1) * np.sqrt(252)
    assert ci["sharpe"]["low"] < sample_sharpe < ci["sharpe"]["high"]
    assert ci["terminal_wealth"]["low"] < np.prod(1 + returns) < ci["terminal_wealth"]["high"]
    assert ci["max_drawdown"]["high"] <= 0
    fan = mc.wealth_quantiles()
    assert (fan[0.05] <= fan[0.5]).all() and (fan[0.5] <= fan[0.95]).all()


def test_trade_sequences_keep_the_total_when_not_resampled() -> None:
    pnl = np.array([100.0, -50.0, 25.0])
    mc = montecarlo.trade_sequences(pnl, equity=1000.0, n_paths=100, seed=3)
    assert mc.paths.shape == (100, 3)
    assert set(np.unique(mc.paths)) <= {0.1, -0.05, 0.025}
