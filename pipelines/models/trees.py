"""Gradient-boosted trees for next-session returns (Gu, Kelly & Xiu 2020 style).

Shallow trees on the ranked characteristics, squared loss, early stopping on the last 20% of
the training dates (a time split, never a random one). A fixed seed and a fixed thread count
make a fit reproducible bit for bit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xgboost

PARAMS = {
    "max_depth": 3,
    "learning_rate": 0.05,
    "n_estimators": 400,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 50,
    "objective": "reg:squarederror",
    "random_state": 7,
    "n_jobs": 2,
    "early_stopping_rounds": 30,
}
VALIDATION_FRACTION = 0.2


def fit(features: pd.DataFrame, target: pd.Series) -> tuple[xgboost.XGBRegressor, dict]:
    """Fit on rows indexed (session_date, symbol); return the model and validation metrics."""
    dates = np.sort(features.index.get_level_values("session_date").unique())
    cut = dates[int(len(dates) * (1 - VALIDATION_FRACTION))]
    is_train = features.index.get_level_values("session_date") < cut
    model = xgboost.XGBRegressor(**PARAMS)
    model.fit(
        features[is_train],
        target[is_train],
        eval_set=[(features[~is_train], target[~is_train])],
        verbose=False,
    )
    predicted = model.predict(features[~is_train])
    actual = target[~is_train].to_numpy()
    metrics = {
        "best_iteration": float(model.best_iteration),
        "val_rmse": float(np.sqrt(np.mean((predicted - actual) ** 2))),
        # Uncentred out-of-sample R² against a zero forecast, as in GKX.
        "val_r2_zero": float(1 - np.sum((actual - predicted) ** 2) / np.sum(actual**2)),
        "val_spearman_pooled": float(
            pd.Series(predicted).corr(pd.Series(actual), method="spearman")
        ),
        "train_rows": float(is_train.sum()),
        "val_rows": float((~is_train).sum()),
    }
    return model, metrics
