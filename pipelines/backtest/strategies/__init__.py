"""The strategy suite, by name: ``momentum``, ``mean_reversion``, ``ml_xgboost``,
``ml_random_forest``, ``ml_ipca`` and ``ensemble`` (momentum + mean reversion + IPCA), and
``planted_oracle``, which knows the planted market's premia (the controls' upper bound)."""

from __future__ import annotations

from collections.abc import Callable

from pipelines.backtest.data import BacktestInputError
from pipelines.backtest.strategies.base import Strategy, TrainingSet
from pipelines.backtest.strategies.ensemble import Ensemble
from pipelines.backtest.strategies.mean_reversion import MeanReversion
from pipelines.backtest.strategies.ml import MLStrategy
from pipelines.backtest.strategies.momentum import Momentum
from pipelines.backtest.strategies.oracle import PlantedOracle

STRATEGIES: dict[str, Callable[[], Strategy]] = {
    "momentum": Momentum,
    "mean_reversion": MeanReversion,
    "ml_xgboost": lambda: MLStrategy("xgboost"),
    "ml_random_forest": lambda: MLStrategy("random_forest"),
    "ml_ipca": lambda: MLStrategy("ipca"),
    "ensemble": lambda: Ensemble([Momentum(), MeanReversion(), MLStrategy("ipca")]),
    "planted_oracle": PlantedOracle,
}


def get_strategy(name: str) -> Strategy:
    """A fresh strategy by name; raises BacktestInputError listing the names that exist."""
    try:
        return STRATEGIES[name]()
    except KeyError:
        raise BacktestInputError(
            f"unknown strategy {name!r}; choose one of {', '.join(sorted(STRATEGIES))}"
        ) from None


__all__ = [
    "STRATEGIES",
    "Ensemble",
    "MLStrategy",
    "MeanReversion",
    "Momentum",
    "PlantedOracle",
    "Strategy",
    "TrainingSet",
    "get_strategy",
]
