"""Mean reversion: buy recent losers. The signal is minus the rank of the last ``ret_5d``
(5-session return): the short-term reversal effect (Lehmann 1990, Lo & MacKinlay 1990)."""

from __future__ import annotations

from datetime import date

import pandas as pd

from pipelines.backtest.data import MarketData
from pipelines.backtest.strategies.base import DEFAULT_SCALE, Strategy, features_at


class MeanReversion(Strategy):
    name = "mean_reversion"

    def __init__(self, characteristic: str = "ret_5d", scale: float = DEFAULT_SCALE):
        self.characteristic = characteristic
        self.scale = scale

    def expected_returns(self, data: MarketData, as_of: date) -> pd.Series:
        return -self.scale * features_at(data, as_of)[self.characteristic]

    def params(self) -> dict[str, object]:
        return {"name": self.name, "characteristic": self.characteristic, "scale": self.scale}
