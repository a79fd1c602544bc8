"""Walk-forward folds (purge, embargo, windows) and reproducible out-of-sample forecasts."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from pipelines.errors import ModelError
from pipelines.models import forest, ipca_returns, synthetic, trees, walk_forward

DATES = [d.date() for d in pd.bdate_range("2020-01-01", periods=120)]


def _position(d: date) -> int:
    return DATES.index(d)


@pytest.mark.parametrize("purge,embargo,window", [(1, 0, None), (1, 3, None), (2, 5, 40)])
def test_no_training_label_reaches_a_test_date(purge: int, embargo: int, window) -> None:
    folds = walk_forward.make_folds(DATES, DATES[60], refit_every=15, window=window,
                                    purge=purge, embargo=embargo)
    assert [f.test[0] for f in folds] == [DATES[60], DATES[75], DATES[90], DATES[105]]
    tested = [d for f in folds for d in f.test]
    assert tested == DATES[60:], "every test date once, in order"
    for fold in folds:
        last_train, first_test = _position(fold.train[-1]), _position(fold.test[0])
        # the label dated t spans t -> t+1 (horizon 1): it must end before the first test date
        assert last_train + 1 < first_test
        # purge and embargo: exactly purge + embargo dates left out before the test block
        assert first_test - last_train - 1 == purge + embargo
        assert set(fold.train).isdisjoint(fold.test)
        if window is None:
            assert fold.train[0] == DATES[0]
        else:
            assert len(fold.train) == window


def test_a_longer_label_horizon_needs_a_longer_purge() -> None:
    with pytest.raises(ModelError, match="shorter than the label horizon"):
        walk_forward.make_folds(DATES, DATES[60], horizon=5, purge=2)
    folds = walk_forward.make_folds(DATES, DATES[60], horizon=5)
    for fold in folds:  # label dated t spans t -> t+5
        assert _position(fold.train[-1]) + 5 < _position(fold.test[0])


def test_too_little_history_is_refused() -> None:
    with pytest.raises(ModelError, match="training dates"):
        walk_forward.make_folds(DATES, DATES[10], min_train=20)
    with pytest.raises(ModelError, match="no feature dates"):
        walk_forward.make_folds(DATES, date(2030, 1, 1))


def _frames(seed: int = 3) -> tuple[pd.DataFrame, pd.Series]:
    panel = synthetic.planted_panel(60, len(DATES), 6, 2, r2=0.05, seed=seed)
    index = pd.MultiIndex.from_arrays(
        [[DATES[t] for t in panel.date_codes], [f"S{a:02d}" for a in panel.asset_codes]],
        names=["session_date", "symbol"],
    )
    features = pd.DataFrame(panel.z[:, :-1], index=index,
                            columns=[f"c{i}" for i in range(5)])
    return features, pd.Series(panel.r, index=index)


@pytest.mark.parametrize("kind", [trees, forest, ipca_returns], ids=["xgb", "rf", "ipca"])
def test_forecasts_are_out_of_sample_and_identical_twice(kind) -> None:
    features, labels = _frames()
    folds = walk_forward.make_folds(DATES, DATES[90], refit_every=15, window=60)
    first = walk_forward.forecasts(features, labels, kind.fit, folds)
    again = walk_forward.forecasts(features, labels, kind.fit, folds)
    pd.testing.assert_series_equal(first, again, check_exact=True)
    test_rows = features.index.get_level_values("session_date") >= DATES[90]
    assert first.index.equals(features.index[test_rows])
    assert np.isfinite(first).all() and first.std() > 0
    # The first fold's forecasts ignore every label dated from its first test date on.
    scrambled = labels.copy()
    later = labels.index.get_level_values("session_date") >= DATES[90]
    scrambled[later] = np.random.default_rng(0).permutation(scrambled[later].to_numpy())
    pd.testing.assert_series_equal(
        walk_forward.forecasts(features, scrambled, kind.fit, folds[:1]),
        first[first.index.get_level_values("session_date").isin(folds[0].test)],
        check_exact=True,
    )
