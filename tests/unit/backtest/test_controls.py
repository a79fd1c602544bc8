"""The controls' markets and verdict: what is planted is what the feature store finds, the null
market has nothing to find, and the verdict fails each way it should."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.backtest.controls import ControlRun, Controls, verdict
from pipelines.backtest.strategies import get_strategy
from pipelines.backtest.synthetic import PLANTED_PREMIA, planted_market
from pipelines.features import characteristics

N_ASSETS, N_YEARS = 150, 2.0


def _premia_found(premia: dict[str, float]) -> pd.DataFrame:
    """Fama–MacBeth: each session's demeaned next-session returns regressed on the planted
    characteristics' ranks as the feature store computes them; mean slope and its standard
    error over sessions."""
    market = planted_market(N_ASSETS, N_YEARS, premia=premia, seed=7)
    features = characteristics.compute(market.to_bars())
    nxt = (market.close.shift(-1) / market.close - 1).stack(future_stack=True)
    names = list(PLANTED_PREMIA)
    slopes = []
    for _, rows in features[names].groupby(level="session_date"):
        realized = nxt.reindex(rows.index).to_numpy()
        if np.isnan(realized).all():
            continue
        x = rows.to_numpy() - rows.to_numpy().mean(axis=0)
        slopes.append(np.linalg.lstsq(x, realized - realized.mean(), rcond=None)[0])
    found = np.array(slopes)
    return pd.DataFrame(
        {"mean": found.mean(axis=0), "se": found.std(axis=0, ddof=1) / np.sqrt(len(found))},
        index=names,
    )


def test_the_feature_store_finds_the_planted_premia():
    found = _premia_found(PLANTED_PREMIA)
    for name, premium in PLANTED_PREMIA.items():
        mean, se = found.loc[name]
        assert abs(mean - premium) < 3 * se, (name, mean, premium, se)
        assert abs(mean) > 3 * se, (name, mean, se)  # and it is there to be found


def test_the_null_market_has_no_premium_to_find():
    found = _premia_found({})
    assert (found["mean"].abs() < 3 * found["se"]).all(), found


def test_null_and_planted_share_their_draws_and_differ_only_once_features_exist():
    planted = planted_market(40, 1.0, seed=3)
    null = planted_market(40, 1.0, premia={}, seed=3)
    first = characteristics.MIN_HISTORY  # the first session whose return the signal moves
    pd.testing.assert_frame_equal(planted.close.iloc[:first], null.close.iloc[:first])
    assert not np.allclose(planted.close.iloc[first:], null.close.iloc[first:])


def test_an_unknown_characteristic_cannot_be_planted():
    with pytest.raises(ValueError, match="cannot plant \\['book_to_market'\\]: choose from"):
        planted_market(10, 1.0, premia={"book_to_market": 0.001})


def test_the_oracle_expects_the_planted_premia_times_the_ranks():
    market = planted_market(40, 1.0, seed=3)
    data = market.with_features(characteristics.compute(market.to_bars()))
    as_of = data.sessions[-1]
    expected = get_strategy("planted_oracle").expected_returns(data.as_of(as_of), as_of)
    ranks = data.features.xs(as_of, level="session_date")
    formula = 0.002 * ranks["mom_126d_skip5"] - 0.0012 * ranks["vol_21d"]
    pd.testing.assert_series_equal(expected, formula, check_names=False)
    assert len(expected) == 40


def _runs(learner: float, oracle: float, null_dsr: float) -> Controls:
    return Controls(
        ControlRun("planted", "ml_ipca", {"sharpe": learner, "dsr": 0.99}, 1.0),
        ControlRun("planted", "planted_oracle", {"sharpe": oracle, "dsr": 1.0}, 1.0),
        ControlRun("null", "ml_ipca", {"sharpe": 0.1, "dsr": null_dsr}, 1.0),
    )


def test_the_verdict_passes_a_learner_near_the_oracle_and_a_quiet_null():
    assert verdict(_runs(1.5, 2.0, 0.4)) == []


def test_the_verdict_names_each_failure():
    assert verdict(_runs(-0.2, 2.0, 0.4)) == [
        "planted market: the learner's Sharpe is -0.20, not > 0",
        "planted market: the learner's Sharpe -0.20 is below 50% of the oracle's 2.00",
    ]
    assert verdict(_runs(0.5, 2.0, 0.4)) == [
        "planted market: the learner's Sharpe 0.50 is below 50% of the oracle's 2.00"
    ]
    assert verdict(_runs(1.5, 2.0, 0.97)) == [
        "null market: deflated Sharpe 0.970 is significant (≥ 0.95) where there is no signal"
    ]
