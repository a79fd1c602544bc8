"""Walk-forward training: refit on the past, forecast the next block, with purge and embargo.

Dates are feature dates (NYSE ``session_date``), sorted and unique. The label of date t is
the simple return from t's close to the close ``horizon`` sessions later (``horizon = 1`` for
this project's next-session labels), so it is only known at t + horizon.

For a test block starting at position s of ``dates``, the training dates are positions
``[s − purge − embargo − window, s − purge − embargo)`` (from 0 when the window expands):

* **purge** (≥ ``horizon``, default ``horizon``): the ``purge`` dates just before s are
  dropped. The label dated s − j ends at s − j + horizon, at or after the first test date
  exactly when j ≤ horizon; so with purge ≥ horizon every training label ends strictly before
  s, and none touches the test block (whose labels start at s's close).
* **embargo** (sessions, default 0): an extra gap before the test block. Characteristics are
  computed over overlapping windows (5 to 126 sessions), so rows just before the test block
  resemble its first rows; the embargo keeps them out. López de Prado's post-test embargo has
  no object here: training never uses dates after a test block.

Counting positions rather than calendar sessions is conservative: a session missing from the
features only widens the gap. A model is refitted every ``refit_every`` dates (e.g. 21 ≈
monthly). Nothing here is random: with the models' fixed seeds the forecasts are identical run
to run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from pipelines.errors import ModelError

FitFunction = Callable[[pd.DataFrame, pd.Series], tuple[Any, dict]]


@dataclass(frozen=True)
class Fold:
    """One refit: train on ``train`` dates, forecast the ``test`` dates."""

    train: tuple[date, ...]
    test: tuple[date, ...]


def make_folds(
    dates: Sequence[date],
    test_start: date,
    test_end: date | None = None,
    refit_every: int = 21,
    window: int | None = None,
    horizon: int = 1,
    purge: int | None = None,
    embargo: int = 0,
    min_train: int = 20,
) -> list[Fold]:
    """Folds covering the dates in ``[test_start, test_end]``, one refit per block.

    ``window`` is the training length in dates (None: expanding from the first date).
    Raises :class:`ModelError` when a purge shorter than the label horizon would leak, or when
    a fold would have fewer than ``min_train`` training dates.
    """
    ordered = sorted(set(dates))
    purge = horizon if purge is None else purge
    if horizon < 1 or refit_every < 1 or embargo < 0:
        raise ModelError("horizon and refit_every must be ≥ 1 and embargo ≥ 0 sessions")
    if purge < horizon:
        raise ModelError(
            f"purge of {purge} sessions is shorter than the label horizon ({horizon}): "
            "training labels would overlap the test period; purge at least the horizon"
        )
    if window is not None and window < min_train:
        raise ModelError(f"a window of {window} dates is shorter than min_train={min_train}")
    positions = [
        i for i, d in enumerate(ordered) if d >= test_start and (test_end is None or d <= test_end)
    ]
    if not positions:
        raise ModelError(f"no feature dates from {test_start} to {test_end}: build features first")
    folds = []
    for block in range(0, len(positions), refit_every):
        first = positions[block]
        stop = first - purge - embargo
        start = 0 if window is None else max(0, stop - window)
        if stop - start < min_train:
            raise ModelError(
                f"the fold testing from {ordered[first]} has {max(stop - start, 0)} training "
                f"dates (need {min_train}): start the test window later or load more history"
            )
        test = positions[block : block + refit_every]
        folds.append(Fold(tuple(ordered[start:stop]), tuple(ordered[test[0] : test[-1] + 1])))
    return folds


def forecasts(
    features: pd.DataFrame, labels: pd.Series, fit: FitFunction, folds: Sequence[Fold]
) -> pd.Series:
    """Out-of-sample forecasts for every test row of every fold.

    ``features`` is indexed (session_date, symbol); ``labels`` is aligned with it (NaN where
    the next return is unknown: such rows are not trained on). Each fold calls
    ``fit(train_features, train_labels) -> (model, metrics)`` and forecasts its test rows with
    ``model.predict``. Returns a Series indexed like the test rows, named ``forecast``.
    """
    labels = labels.reindex(features.index)
    row_dates = features.index.get_level_values("session_date")
    parts = []
    for fold in folds:
        in_train = row_dates.isin(fold.train) & labels.notna().to_numpy()
        in_test = row_dates.isin(fold.test)
        if not in_train.any():
            raise ModelError(f"no labelled training rows for the fold testing {fold.test[0]}")
        model, _ = fit(features[in_train], labels[in_train])
        test = features[in_test]
        parts.append(pd.Series(np.asarray(model.predict(test), dtype=float), index=test.index))
    if not parts:
        return pd.Series(dtype=float, name="forecast")
    return pd.concat(parts).rename("forecast")
