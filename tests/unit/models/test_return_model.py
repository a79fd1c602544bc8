"""ReturnModel (what leaves a registry) and the alias moves domain code makes through any
Registry, here the in-process one (the MLflow one: tests/integration/test_models.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.errors import ModelError
from pipelines.models import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS_CHAMPION,
    ModelRef,
    ipca_returns,
    synthetic,
    trees,
)
from pipelines.models.promotion import rollback
from pipelines.models.return_model import InMemoryRegistry, ReturnModel
from pipelines.models.training import promote

DATES = [d.date() for d in pd.bdate_range("2020-01-01", periods=40)]
COLUMNS = [f"c{i}" for i in range(5)]


def _frames() -> tuple[pd.DataFrame, pd.Series]:
    panel = synthetic.planted_panel(40, len(DATES), 6, 2, r2=0.05, seed=5)
    index = pd.MultiIndex.from_arrays(
        [[DATES[t] for t in panel.date_codes], [f"S{a:02d}" for a in panel.asset_codes]],
        names=["session_date", "symbol"],
    )
    return pd.DataFrame(panel.z[:, :-1], index=index, columns=COLUMNS), pd.Series(
        panel.r, index=index
    )


@pytest.mark.parametrize("kind", [trees, ipca_returns], ids=["xgb", "ipca"])
def test_predict_is_a_series_on_the_rows_from_the_fitted_columns(kind) -> None:
    features, labels = _frames()
    fitted, _ = kind.fit(features, labels)
    model = ReturnModel(ModelRef("m", "1"), "fs1", tuple(COLUMNS), fitted)
    # Extra and reordered columns are the frame's business: the model takes its own, in order.
    shuffled = features[COLUMNS[::-1]].assign(other=1.0)
    expected = model.predict(shuffled)
    assert isinstance(expected, pd.Series) and expected.index.equals(features.index)
    np.testing.assert_array_equal(expected.to_numpy(), fitted.predict(features))
    with pytest.raises(ModelError, match=r"needs features \['c4'\]"):
        model.predict(features.drop(columns="c4"))


def test_only_ipca_gives_the_planner_a_factor_structure() -> None:
    features, labels = _frames()
    ipca_model, _ = ipca_returns.fit(features, labels)
    tree_model, _ = trees.fit(features, labels)
    assert ReturnModel(ModelRef("m", "1"), "fs1", (), ipca_model).factor_model is ipca_model
    assert ReturnModel(ModelRef("m", "2"), "fs1", (), tree_model).factor_model is None


def test_promotion_and_rollback_move_aliases_through_any_registry() -> None:
    registry = InMemoryRegistry()
    first = registry.add("m", "fs1", (), object())
    second = registry.add("m", "fs1", (), object())
    assert (first.ref.version, second.ref.version) == ("1", "2")
    assert registry.load(second.ref) is second
    registry.set_alias("m", CHAMPION, "1")
    registry.set_alias("m", CHALLENGER, "2")

    promote(registry, "m", "2")
    assert [registry.alias_version("m", a) for a in (CHAMPION, PREVIOUS_CHAMPION, CHALLENGER)] \
        == ["2", "1", None]
    assert rollback(registry, "m") == {"champion": "1", "previous_champion": "2"}
    assert registry.alias_version("m", CHAMPION) == "1"


def test_an_unknown_version_moves_no_alias() -> None:
    registry = InMemoryRegistry()
    registry.add("m", "fs1", (), object())
    registry.set_alias("m", CHAMPION, "1")
    with pytest.raises(ModelError, match="has no version 3"):
        promote(registry, "m", "3")
    assert registry.alias_version("m", CHAMPION) == "1"
    assert registry.alias_version("m", PREVIOUS_CHAMPION) is None
    with pytest.raises(ModelError, match="has no version 3"):
        registry.load(ModelRef("m", "3"))
