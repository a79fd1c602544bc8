"""Tree-leaf conditional factors and interaction features, against hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost

from pipelines.errors import ModelError
from pipelines.models import synthetic, tree_factors

DATES = [d.date() for d in pd.bdate_range("2021-01-04", periods=40)]


def _frames(seed: int = 8) -> tuple[pd.DataFrame, pd.Series]:
    panel = synthetic.planted_panel(80, len(DATES), 5, 2, r2=0.3, seed=seed)
    index = pd.MultiIndex.from_arrays(
        [[DATES[t] for t in panel.date_codes], [f"S{a:02d}" for a in panel.asset_codes]],
        names=["session_date", "symbol"],
    )
    features = pd.DataFrame(panel.z[:, :-1], index=index, columns=["a", "b", "c", "d"])
    return features, pd.Series(panel.r, index=index)


def test_interaction_features_are_pairwise_products() -> None:
    features, _ = _frames()
    inter = tree_factors.interaction_features(features)
    assert list(inter.columns) == ["a×b", "a×c", "a×d", "b×c", "b×d", "c×d"]
    np.testing.assert_array_equal(inter["b×d"], features["b"] * features["d"])
    assert inter.index.equals(features.index)
    assert inter.abs().to_numpy().max() <= 0.25  # ranks lie in [-0.5, 0.5]
    with pytest.raises(ModelError, match="at least two"):
        tree_factors.interaction_features(features[["a"]])


def test_leaves_partition_every_date_and_factors_are_leaf_means() -> None:
    features, returns = _frames()
    train = features.index.get_level_values("session_date") < DATES[30]
    tree = tree_factors.grow_tree(features[train], returns[train], max_depth=2)
    leaves = tree.leaves(features)  # applied to later dates too: conditional on z_t
    assert tree.tree.get_n_leaves() == 4 and leaves.nunique() == 4
    per_date = leaves.groupby(level="session_date").size()
    counts = features.groupby(level="session_date").size()
    pd.testing.assert_series_equal(per_date, counts, check_names=False)  # each row one leaf

    factors = tree_factors.leaf_factors(leaves, returns)
    assert factors.shape == (len(DATES), 4)
    day = DATES[35]
    for leaf in leaves.unique():
        members = leaves[leaves == leaf].xs(day, level="session_date").index
        by_hand = returns.xs(day, level="session_date")[members].mean()
        assert factors.loc[day, f"leaf_{leaf}"] == pytest.approx(by_hand, abs=1e-15)
    # The cross-section's equal-weighted mean is the leaves' count-weighted mean.
    sizes = leaves.xs(day, level="session_date").value_counts()
    mixed = sum(factors.loc[day, f"leaf_{k}"] * n for k, n in sizes.items()) / sizes.sum()
    assert mixed == pytest.approx(returns.xs(day, level="session_date").mean())
    # Growing again gives the same tree.
    again = tree_factors.grow_tree(features[train], returns[train], max_depth=2)
    pd.testing.assert_series_equal(again.leaves(features), leaves)
    assert tree.rules().count("value:") == 4  # one readable rule per leaf


def test_value_weighted_leaf_factor_by_hand() -> None:
    index = pd.MultiIndex.from_product([[DATES[0]], ["A", "B", "C"]],
                                       names=["session_date", "symbol"])
    leaves = pd.Series([1, 1, 2], index=index)
    returns = pd.Series([0.01, 0.04, -0.02], index=index)
    weights = pd.Series([3.0, 1.0, 5.0], index=index)
    table = tree_factors.leaf_factors(leaves, returns, weights)
    assert table.loc[DATES[0], "leaf_1"] == pytest.approx((3 * 0.01 + 0.04) / 4)
    assert table.loc[DATES[0], "leaf_2"] == pytest.approx(-0.02)
    ew = tree_factors.leaf_factors(leaves, returns)
    assert ew.loc[DATES[0], "leaf_1"] == pytest.approx(0.025)


def test_leaves_of_a_fitted_xgboost_tree() -> None:
    features, returns = _frames()
    model = xgboost.XGBRegressor(n_estimators=3, max_depth=2, random_state=7, n_jobs=1)
    model.fit(features, returns)
    leaves = tree_factors.xgboost_leaves(model, features, tree_index=1)
    booster_leaves = model.get_booster().predict(xgboost.DMatrix(features), pred_leaf=True)
    np.testing.assert_array_equal(leaves.to_numpy(), booster_leaves[:, 1])
    assert 2 <= leaves.nunique() <= 4  # depth 2
    factors = tree_factors.leaf_factors(leaves, returns)
    assert factors.notna().sum().sum() > 0
    with pytest.raises(ModelError, match="does not exist"):
        tree_factors.xgboost_leaves(model, features, tree_index=3)
