"""Inference: the @champion's expected next-session return for every symbol on a date."""

from __future__ import annotations

from datetime import date

import pandas as pd
import sqlalchemy as sa

from pipelines.errors import ModelError
from pipelines.features import FEATURE_SET
from pipelines.features.store import load_features
from pipelines.models import CHAMPION, ModelRef, champions
from pipelines.models.return_model import Registry, ReturnModel
from pipelines.runlog import stage_run
from pipelines.warehouse import predictions


def champion(registry: Registry, model_name: str) -> ModelRef:
    """The version ``model_name@champion`` points to (:class:`ModelError` when none does)."""
    version = registry.alias_version(model_name, CHAMPION)
    if version is None:
        raise ModelError(
            f"model {model_name!r} has no @champion: train one (`mltrade train`) or "
            "set the alias in the MLflow UI"
        )
    return ModelRef(model_name, version)


def predict(
    engine: sa.Engine, registry: Registry, model_name: str, as_of: date, run_id: str
) -> tuple[ReturnModel, int]:
    """Predict with the champion from features dated ``as_of``; upsert ``predictions``.

    Returns the model used (its factor structure serves the plan's risk model) and the rows
    written."""
    ref = champion(registry, model_name)
    with stage_run(engine, run_id, "predict", as_of=as_of, model_version=ref.version) as run:
        # A champion set in the MLflow UI is used as is, and recorded as an external change.
        champions.observe(engine, registry, ref.name, ref.version, run_id)
        model = registry.load(ref)
        if model.feature_set_version != FEATURE_SET.key:
            raise ModelError(
                f"{ref.name} v{ref.version} was trained on feature set "
                f"{model.feature_set_version}, but the store holds {FEATURE_SET.key}: retrain "
                "(`mltrade train`) before predicting"
            )
        features = load_features(engine, as_of, as_of)
        if features.empty:
            raise ModelError(f"no features dated {as_of}: run `mltrade features` first")
        expected = model.predict(features)
        by_symbol = pd.Series(expected.to_numpy(), index=expected.index.get_level_values(1))
        rows = predictions.write(
            engine, ref.name, ref.version, as_of, by_symbol, FEATURE_SET.key, run_id
        )
        run.summary = {"rows": rows, "model_version": ref.version}
    return model, rows
