"""Feature importance and validation diagnostics of a training run, on known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.ensemble import RandomForestRegressor

from pipelines.models import diagnostics


def _panel(dates: int = 30, symbols: int = 15, seed: int = 1) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    index = pd.MultiIndex.from_product(
        [pd.bdate_range("2010-01-04", periods=dates).date, [f"S{i:02d}" for i in range(symbols)]],
        names=["session_date", "symbol"],
    )
    features = pd.DataFrame(rng.normal(size=(len(index), 3)), index=index,
                            columns=["signal", "noise_a", "noise_b"])
    labels = pd.Series(0.01 * features["signal"] + rng.normal(0, 0.01, len(index)), index=index)
    return features, labels


class _UsesOnlySignal:
    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return features["signal"].to_numpy()


def test_daily_rank_ic_is_scipys_spearman_date_by_date() -> None:
    features, labels = _panel()
    forecast = features["signal"] + features["noise_a"]
    ours = diagnostics.daily_rank_ic(forecast, labels)
    for day, value in ours.items():
        f, r = forecast.xs(day, level="session_date"), labels.xs(day, level="session_date")
        assert value == pytest.approx(spearmanr(f, r).statistic, abs=1e-12)
    assert len(ours) == 30


def test_permutation_importance_finds_the_only_feature_a_model_uses() -> None:
    features, labels = _panel()
    drops = diagnostics.permutation_importance(_UsesOnlySignal(), features, labels)
    assert drops["noise_a"] == 0.0 and drops["noise_b"] == 0.0, "unused: shuffling changes nothing"
    assert drops["signal"] > 0.3, "the true signal's rank IC is lost when it is shuffled"
    table = diagnostics.importance_table(_UsesOnlySignal(), features, labels)
    assert table.index[0] == "signal" and table["native"].isna().all(), "no native importance"


def test_native_importance_of_a_forest_sums_to_one_and_ranks_the_signal_first() -> None:
    features, labels = _panel()
    forest = RandomForestRegressor(n_estimators=20, max_depth=3, random_state=0).fit(
        features, labels)
    native = diagnostics.native_importance(forest, list(features.columns))
    assert native is not None and native.sum() == pytest.approx(1.0)
    assert native.idxmax() == "signal"


def test_decile_returns_and_the_validation_table_on_a_perfect_forecast() -> None:
    features, labels = _panel(symbols=20)
    deciles = diagnostics.decile_returns(labels, labels)  # forecast = the realized return
    assert list(deciles.index) == list(range(1, 11))
    assert deciles.is_monotonic_increasing
    table = diagnostics.validation_table(labels, labels).set_index("metric")["value"]
    assert table["rank_ic_mean"] == pytest.approx(1.0) and table["r2_zero"] == pytest.approx(1.0)
    assert table["rows"] == len(labels)


def test_write_leaves_tables_and_plots_for_the_run(tmp_path) -> None:
    features, labels = _panel()
    tables = diagnostics.write(tmp_path, _UsesOnlySignal(), features, labels, held_out=False)
    assert {p.name for p in tmp_path.iterdir()} == {
        "feature_importance.csv", "feature_importance.png", "validation.png",
        "validation_scores.csv"}
    assert (tmp_path / "validation.png").read_bytes()[:4] == b"\x89PNG"
    # Validation: the last 20% of the 30 dates.
    assert tables["validation_scores"].set_index("metric")["value"]["dates"] == 6
    assert set(tables) == {"feature_importance", "validation_scores"}
