"""The strategy interface: a signal per symbol at a date, from data known at that date.

A strategy returns *expected next-session returns* (daily, simple) for the symbols it has a
view on; the engine turns them into weights with the live planner's optimizer. Rule-based
strategies map a ranked characteristic (in [-0.5, 0.5], see
:mod:`pipelines.features.characteristics`) onto returns by ``scale``: the top-ranked symbol
expects ``scale / 2`` more than the median, the bottom one ``scale / 2`` less. A strategy that
learns gets :meth:`Strategy.fit` before each out-of-sample period with rows known by then.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from pipelines.backtest.data import MarketData

DEFAULT_SCALE = 0.002  # daily expected-return spread between top and bottom rank (20 bps)


@dataclass(frozen=True)
class TrainingSet:
    """Feature rows (index ``session_date, symbol``) and their next-session returns."""

    features: pd.DataFrame
    labels: pd.Series


class Strategy(ABC):
    """One way of turning point-in-time data into expected returns."""

    name: str = "strategy"
    learns: bool = False

    def fit(self, train: TrainingSet) -> dict[str, float]:
        """Learn from ``train``; return fit metrics (none for rule-based strategies)."""
        return {}

    @abstractmethod
    def expected_returns(self, data: MarketData, as_of: date) -> pd.Series:
        """Expected next-session returns per symbol from ``data`` (known at ``as_of``)."""

    def factor_model(self) -> Any:
        """The fitted IPCA return model whose factor structure is the plan's risk model
        (``RISK_MODEL=auto|ipca``), or None (Ledoit–Wolf)."""
        return None

    def params(self) -> dict[str, object]:
        return {"name": self.name}


def features_at(data: MarketData, as_of: date) -> pd.DataFrame:
    """The ranked characteristics dated ``as_of`` (index ``symbol``); empty when there are none."""
    if data.features is None:
        raise ValueError("the engine attaches features to the data before calling strategies")
    dates = data.features.index.get_level_values("session_date")
    if len(dates) == 0 or dates[-1] != as_of:
        rows = data.features[dates == as_of]
    else:  # the common case: as_of is the view's last date, rows are date-sorted
        start = dates.searchsorted(as_of, side="left")
        rows = data.features.iloc[start:]
    return rows.droplevel("session_date")


def rank(values: pd.Series) -> pd.Series:
    """Cross-sectional rank mapped onto [-0.5, 0.5] (the characteristics' convention)."""
    valid = values.dropna()
    if len(valid) < 2:
        return pd.Series(0.0, index=valid.index)
    return (valid.rank(method="average") - 1) / (len(valid) - 1) - 0.5
