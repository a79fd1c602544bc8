"""Bad input fails with a clear message before any work starts (no session is simulated)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from pipelines.backtest.data import BacktestInputError, MarketData
from pipelines.backtest.engine import BacktestConfig, run
from pipelines.backtest.splits import WalkForward


def _run(market, settings, **overrides):
    steps = []
    config = BacktestConfig(
        **{
            "strategy": "momentum",
            "start": market.sessions[0],
            "end": market.sessions[-1],
            "walk_forward": WalkForward(n_windows=3),
            **overrides,
        }
    )
    try:
        run(config, market, settings, progress=lambda done, total: steps.append(done))
    finally:
        assert steps == [], "work started before the input was checked"


def test_dates_outside_the_data(market, plain_settings) -> None:
    with pytest.raises(BacktestInputError, match=r"outside the data \(2010-01-04\.\."):
        _run(market, plain_settings, start=date(2005, 1, 3))


def test_unknown_strategy(market, plain_settings) -> None:
    with pytest.raises(BacktestInputError, match="unknown strategy 'moon'.*momentum"):
        _run(market, plain_settings, strategy="moon")


def test_window_too_short_to_train(market, plain_settings) -> None:
    with pytest.raises(BacktestInputError, match="use fewer windows"):
        _run(market, plain_settings, walk_forward=WalkForward(n_windows=200))


def test_a_model_with_too_few_rows_to_train(market, plain_settings) -> None:
    few = MarketData({k: v.iloc[:, :10] for k, v in market.panels.items()})
    with pytest.raises(BacktestInputError, match=r"ml_ipca would train on \d+ feature rows"):
        _run(few, plain_settings, strategy="ml_ipca", walk_forward=WalkForward(n_windows=10))


def test_universe_that_empties(market, plain_settings) -> None:
    # Every symbol stops trading after the warm-up: no one is left to trade out of sample.
    panels = {k: v.copy() for k, v in market.panels.items()}
    for panel in panels.values():
        panel.iloc[260:] = float("nan")
    with pytest.raises(BacktestInputError, match="universe is empty"):
        _run(MarketData(panels), plain_settings)


def test_start_after_end(market, plain_settings) -> None:
    with pytest.raises(BacktestInputError, match="not before end"):
        _run(market, plain_settings, start=market.sessions[10], end=market.sessions[5])


def test_missing_columns() -> None:
    with pytest.raises(BacktestInputError, match="lack columns"):
        MarketData.from_bars(pd.DataFrame({"symbol": ["A"], "session_date": [date(2010, 1, 4)]}))
