"""Random forest for next-session returns (Gu, Kelly & Xiu 2020 style).

Shallow-ish trees on the ranked characteristics, each leaf holding many stock-days, features
subsampled per split; a fixed seed makes fits reproducible, and the returned model predicts on
one thread, so its forecasts are identical run to run. Validation as for the boosted
trees: fit on the first 80% of the training dates, score the last 20%; the registered model
is then refitted on every date.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor

PARAMS = {
    "n_estimators": 200,
    "max_depth": 6,
    "min_samples_leaf": 200,
    "max_features": 0.5,
    "random_state": 7,
    "n_jobs": 2,
}
VALIDATION_FRACTION = 0.2


def fit(features: pd.DataFrame, target: pd.Series) -> tuple[RandomForestRegressor, dict]:
    """Fit on rows indexed (session_date, symbol); return the model and validation metrics."""
    dates = np.sort(features.index.get_level_values("session_date").unique())
    cut = dates[int(len(dates) * (1 - VALIDATION_FRACTION))]
    is_train = features.index.get_level_values("session_date") < cut
    held_out = RandomForestRegressor(**PARAMS).fit(features[is_train], target[is_train])
    predicted = held_out.predict(features[~is_train])
    actual = target[~is_train].to_numpy()
    metrics = {
        "val_r2_zero": float(1 - np.sum((actual - predicted) ** 2) / np.sum(actual**2)),
        "val_spearman_pooled": float(
            pd.Series(predicted).corr(pd.Series(actual), method="spearman")
        ),
        "train_rows": float(is_train.sum()),
        "val_rows": float((~is_train).sum()),
    }
    final = RandomForestRegressor(**PARAMS).fit(features, target)
    # Parallel prediction adds the trees in whatever order the threads finish; one thread
    # adds them in order, so forecasts are identical run to run (the fit itself is seeded).
    return final.set_params(n_jobs=1), metrics
