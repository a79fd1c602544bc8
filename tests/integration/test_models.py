"""Training, the MLflow registry and inference against a real MLflow SQLite store."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from mlflow import MlflowClient
from pipelines.config import get_settings
from pipelines.errors import ModelError
from pipelines.features.store import build_features, load_features
from pipelines.models import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, registry
from pipelines.models.inference import predict
from pipelines.models.promotion import gated_promotion, rollback
from pipelines.models.registry import MLflowRegistry
from pipelines.models.return_model import ReturnModel
from pipelines.models.training import promote, train
from pipelines.warehouse import champion_changes

pytestmark = pytest.mark.slow

SYMBOLS = ["AAPL", "IBM", "MSFT", "XOM", "JNJ", "WMT", "KO", "PG", "GE", "T", "PFE", "MRK",
           "CVX", "JPM", "INTC", "CSCO", "ORCL", "HD", "MCD", "DIS"]
AS_OF = date(2010, 8, 9)


@pytest.fixture
def trained(warehouse, load_sample_bars, tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRADE_HOME", str(tmp_path))
    # mlflow.set_tracking_uri() exports MLFLOW_TRACKING_URI; drop the last test's store.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    get_settings.cache_clear()
    settings = get_settings()
    load_sample_bars(SYMBOLS)
    build_features(warehouse)
    ref = train(warehouse, MLflowRegistry(settings), settings, AS_OF, "run-1")
    yield warehouse, settings, ref
    get_settings.cache_clear()


def _predictions(engine: sa.Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sa.text("SELECT * FROM predictions ORDER BY symbol"), conn)


def test_first_model_is_champion_only_and_retraining_is_a_noop(trained) -> None:
    engine, settings, ref = trained
    reg = MLflowRegistry(settings)
    assert ref.version == "1"
    assert reg.alias_version(ref.name, CHAMPION) == "1"
    assert reg.alias_version(ref.name, CHALLENGER) is None, "one role each"
    tags = reg.tags(ref)
    assert tags["train_end"] == "2010-08-06" and tags["feature_set_version"]
    assert train(engine, reg, settings, AS_OF, "run-2") == ref, "same inputs register nothing"
    assert [(c.version, c.previous_version, c.source) for c in
            champion_changes.history(engine, ref.name)] == [("1", None, "bootstrap")]
    _the_training_run_shows_its_data_diagnostics_and_descriptions(settings, ref)


def _the_training_run_shows_its_data_diagnostics_and_descriptions(settings, ref) -> None:
    client = MlflowClient(settings.mlflow_uri)
    experiment = client.get_experiment_by_name(registry.TRAINING)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment.tags["mlflow.note.content"] == registry.EXPERIMENTS[registry.TRAINING]
    version = client.get_model_version(ref.name, ref.version)
    run = client.get_run(version.run_id)
    assert run.info.experiment_id == experiment.experiment_id
    assert "2010-08-06" in version.description and "xgboost" in version.description
    assert client.get_registered_model(ref.name).description == registry.MODEL_DESCRIPTION
    # The feature window as two datasets whose source names the feature set and the dates.
    inputs = {
        {t.key: t.value for t in d.tags}["mlflow.data.context"]: d.dataset
        for d in run.inputs.dataset_inputs
    }
    assert set(inputs) == {"training", "validation"}
    source = json.loads(inputs["training"].source)
    assert source["feature_set_version"] == tags_of(settings, ref)["feature_set_version"]
    assert source["end"] == "2010-08-06" and inputs["training"].source_type == "warehouse"
    rows = {ctx: int(json.loads(d.profile)["num_rows"]) for ctx, d in inputs.items()}
    assert rows["training"] + rows["validation"] == int(run.data.metrics["train_rows"]
                                                        + run.data.metrics["val_rows"])
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"feature_importance.png", "feature_importance.csv", "feature_importance.json",
            "validation.png", "validation_scores.json"} <= files
    importance = pd.read_csv(client.download_artifacts(run.info.run_id,
                                                       "feature_importance.csv"))
    assert importance["native"].sum() == pytest.approx(1.0)
    assert run.info.end_time - run.info.start_time > 0


def tags_of(settings, ref) -> dict[str, str]:
    return MLflowRegistry(settings).tags(ref)


def test_a_new_window_is_a_challenger_until_promoted_in_the_ui_or_by_hand(trained) -> None:
    engine, settings, ref = trained
    reg = MLflowRegistry(settings)
    newer = train(engine, reg, settings, date(2010, 8, 13), "run-3")
    assert newer.version == "2"
    assert reg.alias_version(ref.name, CHAMPION) == "1"
    assert reg.alias_version(ref.name, CHALLENGER) == "2"
    # What the MLflow UI does when a user adds @champion to version 2 by hand.
    MlflowClient(settings.mlflow_uri).set_registered_model_alias(ref.name, CHAMPION, "2")
    used, _ = predict(engine, reg, ref.name, AS_OF, "rebalance-1")
    assert used.ref.version == "2" and set(_predictions(engine)["model_version"]) == {"2"}
    last = champion_changes.history(engine, ref.name)[-1]
    assert (last.version, last.previous_version, last.source, last.run_id) == (
        "2", "1", "external", "rebalance-1")
    assert reg.alias_version(ref.name, PREVIOUS_CHAMPION) == "1"
    assert reg.alias_version(ref.name, CHALLENGER) is None, "it has won"
    predict(engine, reg, ref.name, AS_OF, "rebalance-2")
    assert len(champion_changes.history(engine, ref.name)) == 2, "a rerun records nothing new"
    # Rolling back from the pipeline undoes the UI's move, and says so.
    assert rollback(reg, ref.name, engine, "rollback-1")["champion"] == "1"
    assert champion_changes.history(engine, ref.name)[-1].source == "rollback"
    predict(engine, reg, ref.name, AS_OF, "rebalance-3")
    assert len(champion_changes.history(engine, ref.name)) == 3, "the pipeline's own move is known"
    # A manual promotion moves @champion and keeps the one it replaced.
    promote(reg, ref.name, "2", engine, "manual", "run-4")
    assert reg.alias_version(ref.name, CHAMPION) == "2"
    assert reg.alias_version(ref.name, PREVIOUS_CHAMPION) == "1"
    assert champion_changes.history(engine, ref.name)[-1].source == "manual"


def test_predictions_are_reproducible_and_rerun_identically(trained) -> None:
    engine, settings, ref = trained
    reg = MLflowRegistry(settings)
    champion, rows = predict(engine, reg, ref.name, AS_OF, "run-1")
    assert champion.ref == ref and rows == len(SYMBOLS)
    first = _predictions(engine)
    predict(engine, reg, ref.name, AS_OF, "run-2")
    pd.testing.assert_frame_equal(_predictions(engine), first)
    assert first["expected_return"].std() > 0, "the model separates stocks"
    assert champion.factor_model is None, "trees have no factor structure"
    _only_project_types_leave(reg, ref, engine)


def _only_project_types_leave(reg: MLflowRegistry, ref, engine: sa.Engine) -> None:
    """``load`` gives a ReturnModel around the fitted estimator (no pyfunc, no MLflow
    object), and it predicts exactly what the logged MLflow model serves."""
    import mlflow

    model = reg.load(ref)
    assert type(model) is ReturnModel and model.ref == ref
    assert type(model.estimator).__name__ in {
        "XGBRegressor", "RandomForestRegressor", "IPCAReturnModel"}
    for value in vars(model).values():
        assert not type(value).__module__.startswith("mlflow"), type(value)
    features = load_features(engine, AS_OF, AS_OF)
    expected = model.predict(features.iloc[:, ::-1])  # column order is the model's business
    assert isinstance(expected, pd.Series) and expected.index.equals(features.index)
    served = mlflow.pyfunc.load_model(f"models:/{ref.name}/{ref.version}")
    np.testing.assert_array_equal(expected.to_numpy(),
                                  np.asarray(served.predict(features), dtype=float))


def test_inference_refuses_a_feature_set_mismatch(trained) -> None:
    engine, settings, ref = trained
    reg = MLflowRegistry(settings)
    registry._client(settings).set_model_version_tag(ref.name, ref.version,
                                                     "feature_set_version", "0.stale")
    with pytest.raises(ModelError, match="retrain"):
        predict(engine, reg, ref.name, AS_OF, "run-1")


def test_no_features_for_the_date_is_a_clear_error(trained) -> None:
    engine, settings, ref = trained
    reg = MLflowRegistry(settings)
    with pytest.raises(ModelError, match="no features dated 2010-08-18"):
        predict(engine, reg, ref.name, date(2010, 8, 18), "run-1")


def test_an_ipca_model_trains_registers_and_predicts(trained, monkeypatch) -> None:
    engine, _, xgb_ref = trained
    monkeypatch.setenv("MODEL_KIND", "ipca")
    get_settings.cache_clear()
    settings = get_settings()
    reg = MLflowRegistry(settings)
    ref = train(engine, reg, settings, AS_OF, "run-ipca")
    assert ref.version != xgb_ref.version, "another kind is another training key"
    assert reg.tags(ref)["model_kind"] == "ipca"
    promote(reg, ref.name, ref.version)
    champion, rows = predict(engine, reg, ref.name, AS_OF, "run-ipca")
    assert champion.ref == ref and rows == len(SYMBOLS)
    assert champion.factor_model is champion.estimator, "IPCA gives the planner its factors"
    _only_project_types_leave(reg, ref, engine)
    with engine.connect() as conn:
        values = conn.execute(sa.text(
            "SELECT expected_return FROM predictions WHERE model_version = :v"),
            {"v": ref.version}).scalars().all()
    assert len(set(values)) == len(SYMBOLS), "IPCA forecasts differ across stocks"


def test_gated_promotion_scores_both_on_one_window_and_rollback_undoes_it(
    trained, monkeypatch
) -> None:
    engine, _, champion = trained
    monkeypatch.setenv("MODEL_KIND", "ipca")
    get_settings.cache_clear()
    settings = get_settings()
    reg = MLflowRegistry(settings)
    challenger = train(engine, reg, settings, AS_OF, "run-ipca")
    decision = gated_promotion(engine, reg, settings, date(2010, 8, 20), "gate-run")
    scores = decision["scores"]
    assert set(scores) == {champion.version, challenger.version}
    assert scores[champion.version]["rows"] == scores[challenger.version]["rows"] > 0
    gain = scores[challenger.version]["rank_ic"] - scores[champion.version]["rank_ic"]
    assert decision["promoted"] == (gain >= settings.promotion_min_ic_gain)
    expected = challenger.version if decision["promoted"] else champion.version
    assert reg.alias_version(champion.name, CHAMPION) == expected
    sources = [c.source for c in champion_changes.history(engine, champion.name)]
    assert sources == (["bootstrap", "gate"] if decision["promoted"] else ["bootstrap"])

    promote(reg, champion.name, challenger.version)  # by hand, whatever the gate said
    assert rollback(reg, champion.name) == {"champion": champion.version,
                                            "previous_champion": challenger.version}
    assert reg.alias_version(champion.name, CHAMPION) == champion.version


def test_predictions_are_point_in_time(trained) -> None:
    engine, settings, ref = trained
    reg = MLflowRegistry(settings)
    predict(engine, reg, ref.name, AS_OF, "full")
    full = _predictions(engine)
    with engine.begin() as conn:  # forget everything after AS_OF, then rebuild and predict
        conn.execute(sa.text("DELETE FROM bars WHERE session_date > :d"), {"d": AS_OF})
        conn.execute(sa.text("DELETE FROM predictions"))
    build_features(engine)
    predict(engine, reg, ref.name, AS_OF, "full")
    pd.testing.assert_frame_equal(_predictions(engine), full)


def test_a_random_forest_trains_reproducibly_and_predicts(trained, monkeypatch) -> None:
    engine, _, xgb_ref = trained
    monkeypatch.setenv("MODEL_KIND", "random_forest")
    get_settings.cache_clear()
    settings = get_settings()
    reg = MLflowRegistry(settings)
    ref = train(engine, reg, settings, AS_OF, "run-rf")
    tags = reg.tags(ref)
    assert ref.version != xgb_ref.version and tags["model_kind"] == "random_forest"
    promote(reg, ref.name, ref.version)
    _, rows = predict(engine, reg, ref.name, AS_OF, "run-rf")
    first = _predictions(engine)
    assert rows == len(SYMBOLS)
    _only_project_types_leave(reg, ref, engine)
    # Refit from scratch with the same seed: the same forecasts (to rounding: parallel
    # prediction sums the trees in whatever order the threads finish).
    from pipelines.features.store import forward_returns
    from pipelines.models import forest
    from pipelines.models.training import training_window

    start, last, known = training_window(settings, AS_OF)
    features = load_features(engine, start, last)
    labels = forward_returns(engine, start, known).reindex(features.index)
    model, _ = forest.fit(features[labels.notna()], labels[labels.notna()])
    again = model.predict(load_features(engine, AS_OF, AS_OF))
    ours = first[first.model_version == ref.version]["expected_return"].to_numpy()
    np.testing.assert_allclose(np.sort(again), np.sort(ours), rtol=1e-12, atol=0)
