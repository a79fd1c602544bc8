from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.backtest.data import MarketData
from pipelines.backtest.strategies import MLStrategy, TrainingSet
from pipelines.errors import ModelError
from pipelines.features.characteristics import NAMES
from pipelines.models import trees


def _rows(n_dates: int, n_symbols: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    index = pd.MultiIndex.from_product(
        [pd.date_range("2015-01-01", periods=n_dates).date, [f"S{i}" for i in range(n_symbols)]],
        names=["session_date", "symbol"],
    )
    return pd.DataFrame(rng.uniform(-0.5, 0.5, (len(index), len(NAMES))), index, list(NAMES))


@pytest.mark.parametrize("kind", ["xgboost", "ipca"])
def test_the_model_code_learns_a_planted_reversal(kind: str) -> None:
    train = _rows(60, 40, seed=1)
    noise = np.random.default_rng(2).normal(0, 0.001, len(train))
    labels = pd.Series(-0.01 * train["ret_5d"].to_numpy() + noise, index=train.index)
    strategy = MLStrategy(kind)
    metrics = strategy.fit(TrainingSet(train, labels))
    assert metrics["val_spearman_pooled"] > 0.8
    test = _rows(1, 40, seed=3)
    day = test.index.get_level_values("session_date")[0]
    data = MarketData({}, test)
    expected = strategy.expected_returns(data, day)
    assert expected.corr(-test.droplevel(0)["ret_5d"], method="spearman") > 0.8


def test_it_is_the_live_training_code_and_refuses_too_few_rows() -> None:
    strategy = MLStrategy("xgboost")
    assert strategy.params()["max_depth"] == trees.PARAMS["max_depth"]
    rows = _rows(5, 10, seed=0)
    with pytest.raises(ModelError, match="only 50 labelled rows"):
        strategy.fit(TrainingSet(rows, pd.Series(0.0, index=rows.index)))
    with pytest.raises(ModelError, match="not been fitted"):
        strategy.expected_returns(MarketData({}, rows), rows.index[0][0])
