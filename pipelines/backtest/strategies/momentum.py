"""Momentum: buy recent winners. The signal is a momentum characteristic's rank, skipping the
last 5 sessions (short-term reversal) as the literature does (Jegadeesh & Titman 1993)."""

from __future__ import annotations

from datetime import date

import pandas as pd

from pipelines.backtest.data import MarketData
from pipelines.backtest.strategies.base import DEFAULT_SCALE, Strategy, features_at


class Momentum(Strategy):
    name = "momentum"

    def __init__(self, characteristic: str = "mom_126d_skip5", scale: float = DEFAULT_SCALE):
        self.characteristic = characteristic
        self.scale = scale

    def expected_returns(self, data: MarketData, as_of: date) -> pd.Series:
        return self.scale * features_at(data, as_of)[self.characteristic]

    def params(self) -> dict[str, object]:
        return {"name": self.name, "characteristic": self.characteristic, "scale": self.scale}
