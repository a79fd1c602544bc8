"""Scores of predicted against realized returns: a hand example, ties, and the real sample."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipelines.backtest.metrics import directional_accuracy, information_coefficient
from pipelines.monitoring.realized import realization_session, score_day
from pipelines.sources.sample import SampleSource


def test_a_hand_worked_cross_section() -> None:
    expected = pd.Series({"A": 0.01, "B": 0.02, "C": 0.03, "D": -0.01})
    realized = pd.Series({"A": 0.00, "B": 0.05, "C": 0.02, "D": -0.02})
    score = score_day(expected, realized)
    # Ranks e = (2, 3, 4, 1), r = (2, 4, 3, 1): sum d² = 2, rho = 1 − 6·2 / (4·15) = 0.8.
    assert score.rank_ic == pytest.approx(0.8)
    assert score.mae == pytest.approx((0.01 + 0.03 + 0.01 + 0.01) / 4)
    # Demeaned: e = (−.0025, .0075, .0175, −.0225), r = (−.0125, .0375, .0075, −.0325): 4 of 4.
    assert score.hit_ratio == 1.0
    assert score.symbols == 4
    # A symbol exactly on a mean (B, realized 0 = the mean) is neither hit nor miss: 2 of 2.
    exact = score_day(pd.Series({"A": 1.0, "B": 2.0, "C": 3.0}),
                      pd.Series({"A": -0.25, "B": 0.0, "C": 0.25}))
    assert exact.hit_ratio == 1.0 and exact.rank_ic == pytest.approx(1.0)


def test_symbols_missing_on_one_side_are_left_out_and_small_days_give_nan() -> None:
    expected = pd.Series({"A": 0.01, "B": 0.02, "C": 0.03})
    realized = pd.Series({"A": 0.02, "B": np.nan, "Z": 0.5})
    score = score_day(expected, realized)
    assert score.symbols == 1 and math.isnan(score.rank_ic)
    assert score.mae == pytest.approx(0.01)
    assert score_day(pd.Series(dtype=float), pd.Series(dtype=float)).symbols == 0


def test_ties_use_average_ranks_as_scipy_does() -> None:
    expected = pd.Series([0.01, 0.01, 0.02, 0.00, 0.02, 0.03], index=list("ABCDEF"))
    realized = pd.Series([0.00, 0.01, 0.01, -0.01, 0.03, 0.02], index=list("ABCDEF"))
    assert score_day(expected, realized).rank_ic == pytest.approx(
        stats.spearmanr(expected, realized).statistic)


def test_on_the_real_sample_rank_ic_is_scipys_spearman_and_matches_the_backtest() -> None:
    """A 5-session momentum forecast of next-session returns, 20 dates of the real S&P sample."""
    bars = SampleSource().fetch_daily_bars(date(2010, 2, 1), date(2010, 4, 30), None)
    close = bars.pivot(index="session_date", columns="symbol", values="close").sort_index()
    forecast = close.pct_change(5)
    outcome = close.shift(-1) / close - 1
    days = list(close.index[6:26])
    rows = []
    for day in days:
        score = score_day(forecast.loc[day], outcome.loc[day])
        both = pd.concat([forecast.loc[day], outcome.loc[day]], axis=1).dropna()
        assert score.symbols == len(both) > 300
        assert score.rank_ic == pytest.approx(
            stats.spearmanr(both.iloc[:, 0], both.iloc[:, 1]).statistic, abs=1e-12)
        rows.append(pd.DataFrame({"session_date": day, "expected": both.iloc[:, 0],
                                  "realized": both.iloc[:, 1]}))
        assert score.hit_ratio == pytest.approx(directional_accuracy(rows[-1]))
    signals = pd.concat(rows)
    backtest_ic = information_coefficient(signals)
    ours = [score_day(forecast.loc[d], outcome.loc[d]).rank_ic for d in days]
    assert np.allclose(backtest_ic.to_numpy(), ours)


def test_a_prediction_is_realized_at_the_next_session_close() -> None:
    assert realization_session(date(2010, 3, 26)) == date(2010, 3, 29)  # Friday → Monday
    assert realization_session(date(2010, 4, 1)) == date(2010, 4, 5)  # Good Friday closed
    assert realization_session(date(2010, 3, 29), horizon=3) == date(2010, 4, 1)


def test_the_score_does_not_depend_on_the_order_rows_arrive_in() -> None:
    rng = np.random.default_rng(7)
    symbols = [f"S{i:03d}" for i in range(200)]
    expected = pd.Series(rng.normal(0, 0.02, 200), index=symbols)
    realized = pd.Series(rng.normal(0, 0.02, 200), index=symbols)
    scores = {score_day(expected.iloc[order], realized.iloc[order])
              for order in (rng.permutation(200) for _ in range(20))}
    assert len(scores) == 1  # bit for bit, not approximately
