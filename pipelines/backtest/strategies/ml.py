"""The ML strategies: a return model fitted by the live training code, predicting from the
same characteristics. ``kind`` is a ``MODEL_KIND`` (``xgboost``, ``random_forest``, ``ipca``):
the fit is :data:`pipelines.models.training.KINDS`'s ``fit(features, target)``, the same
function the training DAG calls before it registers the model."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd

from pipelines.backtest.data import MarketData
from pipelines.backtest.strategies.base import Strategy, TrainingSet, features_at
from pipelines.errors import ModelError
from pipelines.features import FEATURE_SET
from pipelines.models import ModelRef
from pipelines.models.return_model import ReturnModel

MIN_TRAINING_ROWS = 1_000  # as the live training refuses fewer


class MLStrategy(Strategy):
    learns = True

    def __init__(self, kind: str = "xgboost") -> None:
        from pipelines.models.training import KINDS

        if kind not in KINDS:
            raise ModelError(f"unknown model kind {kind!r}; choose one of {sorted(KINDS)}")
        self.kind = kind
        self.name = f"ml_{kind}"
        self._module = KINDS[kind]
        self.model: ReturnModel | None = None
        self.fits = 0

    def fit(self, train: TrainingSet) -> dict[str, float]:
        usable = train.labels.notna()
        if usable.sum() < MIN_TRAINING_ROWS:
            raise ModelError(
                f"only {int(usable.sum())} labelled rows to train {self.kind} (need "
                f"{MIN_TRAINING_ROWS}): widen the training window or the universe"
            )
        estimator, metrics = self._module.fit(train.features[usable], train.labels[usable])
        self.fits += 1
        ref = ModelRef(f"backtest-{self.name}", str(self.fits))
        self.model = ReturnModel(ref, FEATURE_SET.key, tuple(train.features.columns), estimator)
        return {k: float(v) for k, v in metrics.items()}

    def expected_returns(self, data: MarketData, as_of: date) -> pd.Series:
        if self.model is None:
            raise ModelError(f"{self.name} has not been fitted: the engine fits it first")
        rows = features_at(data, as_of)
        if rows.empty:
            return pd.Series(dtype=float)
        return self.model.predict(rows).rename(None)

    def factor_model(self) -> Any:
        return None if self.model is None else self.model.factor_model

    def params(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, **dict(self._module.PARAMS)}
