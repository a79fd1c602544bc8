from __future__ import annotations

import pytest

from pipelines.backtest.strategies import Ensemble, MeanReversion, Momentum, get_strategy


def test_equal_weights_average_the_members_ranks(known_market) -> None:
    as_of = known_market.sessions[-1]
    ensemble = Ensemble([Momentum(), MeanReversion()], scale=0.002)
    # Momentum ranks A, B, C, D = .5, 1/6, -1/6, -.5; mean reversion .5, -1/6, 1/6, -.5.
    assert ensemble.expected_returns(known_market, as_of).to_dict() == pytest.approx(
        {"A": 0.001, "B": 0.0, "C": 0.0, "D": -0.001}
    )


def test_weights_tilt_toward_a_member(known_market) -> None:
    as_of = known_market.sessions[-1]
    ensemble = Ensemble([Momentum(), MeanReversion()], weights=[3, 1], scale=1.0)
    assert ensemble.expected_returns(known_market, as_of).to_dict() == pytest.approx(
        {"A": 0.5, "B": 1 / 12, "C": -1 / 12, "D": -0.5}
    )


def test_a_member_without_a_view_counts_as_the_median(known_market) -> None:
    as_of = known_market.sessions[-1]

    class OnlyA(Momentum):
        def expected_returns(self, data, day):
            return super().expected_returns(data, day).loc[["A", "D"]]

    ensemble = Ensemble([OnlyA(), Momentum()], scale=1.0)
    result = ensemble.expected_returns(known_market, as_of)
    assert result["B"] == pytest.approx(0.5 * 1 / 6)  # 0 from OnlyA, 1/6 from Momentum


def test_the_suite_ensemble_learns_because_a_member_does() -> None:
    assert get_strategy("ensemble").learns
    with pytest.raises(ValueError, match="weight"):
        Ensemble([Momentum()], weights=[-1.0])
