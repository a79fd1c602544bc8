"""The oracle of the planted market: expected returns from the true premia.

It knows what :func:`pipelines.backtest.synthetic.planted_market` planted (the premium per
unit of each characteristic's rank) and nothing else, so it bounds what a model that has to
learn the premia from data can earn on that market through the same engine and costs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import pandas as pd

from pipelines.backtest.data import MarketData
from pipelines.backtest.strategies.base import Strategy, features_at
from pipelines.backtest.synthetic import PLANTED_PREMIA


class PlantedOracle(Strategy):
    name = "planted_oracle"

    def __init__(self, premia: Mapping[str, float] = PLANTED_PREMIA) -> None:
        self.premia = dict(premia)

    def expected_returns(self, data: MarketData, as_of: date) -> pd.Series:
        ranks = features_at(data, as_of)
        return sum(
            (premium * ranks[name] for name, premium in self.premia.items()),
            start=pd.Series(0.0, index=ranks.index),
        )

    def params(self) -> dict[str, object]:
        return {"name": self.name, "premia": self.premia}
