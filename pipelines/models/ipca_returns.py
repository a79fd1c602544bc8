"""IPCA as a return model: expected next-session return ``z'(Γ_α + Γ_β λ)``.

The instruments are the feature set's ranked characteristics plus a constant (KPS's
convention), each row dated t with its next-session return. Validation mirrors the tree model:
fit on the first 80% of the training dates, score the last 20% against a zero forecast
(uncentred R², as GKX and KPS); the registered model is then refitted on every date.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.models import ipca

N_FACTORS = 3
INTERCEPT = False  # restricted model: expected returns come only through factor exposure
PARAMS = {"n_factors": N_FACTORS, "intercept": INTERCEPT}
VALIDATION_FRACTION = 0.2


@dataclass(frozen=True)
class IPCAReturnModel:
    """A fitted IPCA and the characteristic columns it expects, in order."""

    fit: ipca.IPCAFit
    columns: tuple[str, ...]

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return self.fit.expected_returns(_instruments(features[list(self.columns)]))


def _instruments(features: pd.DataFrame) -> np.ndarray:
    values = features.to_numpy(dtype=float)
    return np.column_stack([values, np.ones(len(values))])


def _fit(features: pd.DataFrame, target: pd.Series) -> ipca.IPCAFit:
    m, _ = ipca.frame_moments(features, target)  # the constant appended, the frame read in place
    return ipca.fit(m, N_FACTORS, intercept=INTERCEPT)


def fit(features: pd.DataFrame, target: pd.Series) -> tuple[IPCAReturnModel, dict]:
    """Fit on rows indexed (session_date, symbol); return the model and validation metrics."""
    dates = np.sort(features.index.get_level_values("session_date").unique())
    cut = dates[int(len(dates) * (1 - VALIDATION_FRACTION))]
    is_train = features.index.get_level_values("session_date") < cut
    columns = tuple(features.columns)
    held_out = IPCAReturnModel(_fit(features[is_train], target[is_train]), columns)
    predicted = held_out.predict(features[~is_train])
    actual = target[~is_train].to_numpy()
    final = _fit(features, target)
    metrics = {
        "val_r2_zero": float(1 - np.sum((actual - predicted) ** 2) / np.sum(actual**2)),
        "val_spearman_pooled": float(
            pd.Series(predicted).corr(pd.Series(actual), method="spearman")
        ),
        "iterations": float(final.iterations),
        "train_rows": float(is_train.sum()),
        "val_rows": float((~is_train).sum()),
    }
    return IPCAReturnModel(final, columns), metrics
