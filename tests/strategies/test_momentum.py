from __future__ import annotations

import pytest

from pipelines.backtest.strategies import Momentum, get_strategy


def test_momentum_buys_the_winners_of_the_window_that_skips_the_last_week(known_market) -> None:
    as_of = known_market.sessions[-1]
    expected = Momentum(scale=0.002).expected_returns(known_market, as_of)
    # Ranks A > B > C > D mapped onto [-0.5, 0.5], times the 20 bps scale.
    assert expected.to_dict() == pytest.approx(
        {"A": 0.001, "B": 0.002 / 6, "C": -0.002 / 6, "D": -0.001}
    )


def test_momentum_uses_only_the_view_it_is_given(known_market) -> None:
    earlier = known_market.sessions[-10]
    view = known_market.as_of(earlier)
    expected = get_strategy("momentum").expected_returns(view, earlier)
    assert list(expected.sort_values().index) == ["D", "C", "B", "A"]
    with pytest.raises(KeyError):  # nothing dated after the view's date exists in it
        view.close.loc[known_market.sessions[-1]]
