from __future__ import annotations

import math

import empyrical
import numpy as np
import pandas as pd
import pytest

from pipelines.backtest import metrics


@pytest.fixture
def returns() -> pd.Series:
    rng = np.random.default_rng(4)
    index = pd.bdate_range("2015-01-01", periods=500)
    return pd.Series(rng.normal(0.0005, 0.01, 500), index=index)


def test_our_drawdown_and_sharpe_agree_with_empyrical(returns) -> None:
    assert metrics.drawdown(returns).min() == pytest.approx(empyrical.max_drawdown(returns))
    assert metrics.sharpe_per_period(returns) * math.sqrt(252) == pytest.approx(
        empyrical.sharpe_ratio(returns)
    )


def test_drawdown_duration_and_hit_rate_on_known_returns() -> None:
    r = pd.Series([0.1, -0.05, -0.05, 0.02, 0.2, -0.01, 0.0, 0.01])
    # Under water from the 2nd to the 4th session (back above the peak on the 5th), then
    # again from the 6th to the end: three sessions each.
    assert metrics.max_drawdown_duration(r) == 3
    assert metrics.hit_rate(r) == pytest.approx(4 / 7)  # the flat session does not count


def test_deflated_sharpe_matches_bailey_and_lopez_de_prado_2014() -> None:
    # The paper's example: annual SR 2.5 over 1250 sessions, 100 trials whose annual SRs have
    # variance 0.5, skewness -3, kurtosis 10 -> DSR 0.9004.
    sr, variance = 2.5 / math.sqrt(250), 0.5 / 250
    sr0 = metrics.expected_max_sharpe(100, variance)
    assert metrics.psr_from_moments(sr, 1250, -3.0, 10.0, sr0) == pytest.approx(0.9004, abs=1e-4)


def test_more_trials_deflate_more(returns) -> None:
    one = metrics.deflated_sharpe_ratio(returns, 1)
    many = metrics.deflated_sharpe_ratio(returns, 50)
    assert one == pytest.approx(metrics.probabilistic_sharpe_ratio(returns))
    assert many < one


def test_ic_and_accuracy_on_known_signals() -> None:
    day = pd.Timestamp("2015-01-02").date()
    perfect = pd.DataFrame(
        {
            "session_date": day,
            "symbol": list("ABCD"),
            "expected": [1, 2, 3, 4],
            "realized": [0.01, 0.02, 0.03, 0.05],
        }
    )
    assert metrics.information_coefficient(perfect).iloc[0] == pytest.approx(1.0)
    assert metrics.directional_accuracy(perfect) == 1.0
    flipped = perfect.assign(expected=[4, 3, 2, 1])
    assert metrics.information_coefficient(flipped).iloc[0] == pytest.approx(-1.0)
    assert metrics.directional_accuracy(flipped) == 0.0


def test_summary_and_targets(returns) -> None:
    daily = pd.DataFrame(
        {
            "return": returns,
            "benchmark_return": returns * 0.5 + 0.0001,
            "turnover": 0.1,
            "gross_exposure": 0.98,
            "net_exposure": 0.98,
            "costs": 10.0,
        }
    )
    out = metrics.summary(daily)
    assert out["beta"] == pytest.approx(2.0, rel=1e-6)  # r = 2 (b - 0.0001)
    assert out["turnover_annual"] == pytest.approx(25.2)
    assert out["total_return"] == pytest.approx((1 + returns).prod() - 1)
    rows = {row["metric"]: row for row in metrics.against_targets(out)}
    assert set(rows) == {"sharpe", "max_drawdown", "win_rate", "model_accuracy", "daily_vol"}
    assert rows["daily_vol"]["met"] is True  # 1% daily
    assert rows["model_accuracy"]["met"] is False  # not measured here: never shown as met
