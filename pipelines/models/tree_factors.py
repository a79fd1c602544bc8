"""Tree-based conditional factors and nonlinear interaction features.

In the spirit of P-Trees (Cong, Feng, He & He 2023) but much smaller: a shallow regression
tree is grown once on pooled characteristics (ranked into [−0.5, 0.5]) to split the
cross-section; its leaves are managed portfolios, and the daily returns of those portfolios
are factors. Because the split rules are applied to each date's characteristics, a stock
moves between leaves as its characteristics change: the factors are conditional.

* :func:`grow_tree` fits scikit-learn's CART (squared error) on returns **demeaned by date**,
  so the splits sort stocks by cross-sectional return differences rather than by the market's
  level; depth and the minimum leaf share are fixed and the seed is fixed (reproducible).
* :func:`xgboost_leaves` takes the leaves of one tree of a fitted XGBoost model instead.
* :func:`leaf_factors`: for each date and leaf, the equal- or value-weighted mean of the next
  session's simple return of the stocks in that leaf (NaN when a leaf is empty that date).
* :func:`interaction_features`: pairwise products ``a×b`` of ranked characteristics (each in
  [−0.25, 0.25]), the nonlinear terms a linear model (e.g. IPCA's instruments) lacks.

Not implemented (full P-Trees): the split criterion that maximizes the squared Sharpe ratio of
the tangency portfolio of leaf factors, boosting of several P-Trees, and the time-series
splits on macro states.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeRegressor, export_text

from pipelines.errors import ModelError


def interaction_features(features: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """Every pairwise product of the (ranked) characteristics, named ``a×b``."""
    names = list(features.columns if columns is None else columns)
    if len(names) < 2:
        raise ModelError("interaction features need at least two characteristics")
    values = features[names].to_numpy(dtype=float)
    pairs = list(combinations(range(len(names)), 2))
    products = np.column_stack([values[:, i] * values[:, j] for i, j in pairs])
    return pd.DataFrame(
        products, index=features.index, columns=[f"{names[i]}×{names[j]}" for i, j in pairs]
    )


@dataclass(frozen=True)
class LeafTree:
    """A fitted shallow tree and the characteristic columns it splits on, in order."""

    tree: DecisionTreeRegressor
    columns: tuple[str, ...]

    def leaves(self, features: pd.DataFrame) -> pd.Series:
        """The leaf (node id) of every row: a partition of each date's cross-section."""
        ids = self.tree.apply(features[list(self.columns)].to_numpy(dtype=float))
        return pd.Series(ids, index=features.index, name="leaf")

    def rules(self) -> str:
        """The split rules, readable."""
        return str(export_text(self.tree, feature_names=list(self.columns)))


def grow_tree(
    features: pd.DataFrame,
    labels: pd.Series,
    max_depth: int = 2,
    min_leaf_fraction: float = 0.1,
    seed: int = 7,
) -> LeafTree:
    """Grow a CART tree on rows indexed (session_date, symbol) against date-demeaned returns.

    ``min_leaf_fraction``: the smallest leaf holds at least that share of the stock-days, so
    every leaf is a diversified portfolio. At most ``2**max_depth`` leaves.
    """
    usable = labels.reindex(features.index).notna().to_numpy()
    if not usable.any():
        raise ModelError("no labelled rows to grow a tree on")
    rows, target = features[usable], labels.reindex(features.index)[usable]
    demeaned = target - target.groupby(level="session_date").transform("mean")
    tree = DecisionTreeRegressor(
        max_depth=max_depth,
        min_samples_leaf=max(1, int(min_leaf_fraction * len(rows))),
        random_state=seed,
    )
    tree.fit(rows.to_numpy(dtype=float), demeaned.to_numpy(dtype=float))
    return LeafTree(tree, tuple(features.columns))


def xgboost_leaves(model: Any, features: pd.DataFrame, tree_index: int = 0) -> pd.Series:
    """The leaf of every row in tree ``tree_index`` of a fitted ``xgboost.XGBRegressor``."""
    ids = np.asarray(model.apply(features))
    if ids.ndim == 1:
        ids = ids[:, None]
    if not 0 <= tree_index < ids.shape[1]:
        raise ModelError(f"the model has {ids.shape[1]} trees; tree {tree_index} does not exist")
    return pd.Series(ids[:, tree_index].astype(int), index=features.index, name="leaf")


def leaf_factors(
    leaves: pd.Series, returns: pd.Series, weights: pd.Series | None = None
) -> pd.DataFrame:
    """Daily leaf-portfolio returns: dates × leaves, equal- or ``weights``-weighted.

    ``leaves`` and ``returns`` (next-session simple returns) are indexed (session_date,
    symbol); rows with no return are left out. Columns are named ``leaf_<id>``.
    """
    frame = pd.DataFrame({"leaf": leaves, "r": returns.reindex(leaves.index)})
    frame["w"] = 1.0 if weights is None else weights.reindex(leaves.index)
    frame = frame.dropna()
    if frame.empty:
        raise ModelError("no rows with both a leaf and a realized return")
    frame["date"] = frame.index.get_level_values("session_date")
    frame["wr"] = frame["w"] * frame["r"]
    sums = frame.groupby(["date", "leaf"])[["wr", "w"]].sum()
    table = (sums["wr"] / sums["w"]).unstack("leaf")
    table.columns = [f"leaf_{int(c)}" for c in table.columns]
    table.index.name = "session_date"
    return table
