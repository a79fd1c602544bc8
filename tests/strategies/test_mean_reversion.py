from __future__ import annotations

import pytest

from pipelines.backtest.strategies import MeanReversion


def test_mean_reversion_buys_last_weeks_losers(known_market) -> None:
    as_of = known_market.sessions[-1]
    expected = MeanReversion(scale=0.002).expected_returns(known_market, as_of)
    # Last five sessions: A fell most, then C (flat), B (+0.5%), D rose most.
    assert expected.to_dict() == pytest.approx(
        {"A": 0.001, "C": 0.002 / 6, "B": -0.002 / 6, "D": -0.001}
    )


def test_before_the_reversal_it_prefers_the_steady_loser(known_market) -> None:
    as_of = known_market.sessions[-6]  # the last session before A and D turn
    expected = MeanReversion().expected_returns(known_market.as_of(as_of), as_of)
    assert expected.idxmax() == "D" and expected.idxmin() == "A"
