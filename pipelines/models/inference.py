"""Inference: the @champion's expected next-session return for every symbol on a date."""

from __future__ import annotations

from datetime import date

import numpy as np
import sqlalchemy as sa

from pipelines.config import Settings
from pipelines.errors import ModelError
from pipelines.features import FEATURE_SET
from pipelines.features.store import load_features
from pipelines.models import CHAMPION, ModelRef, champions, registry
from pipelines.runlog import stage_run

_UPSERT = """
INSERT INTO predictions (model_name, model_version, session_date, symbol, expected_return,
                         feature_set_version, run_id)
VALUES (:m, :v, :d, :s, :r, :fsv, :run)
ON CONFLICT (model_name, model_version, session_date, symbol) DO UPDATE
SET expected_return = excluded.expected_return, run_id = excluded.run_id
WHERE predictions.expected_return IS DISTINCT FROM excluded.expected_return
"""


def champion(settings: Settings) -> ModelRef:
    version = registry.get_alias_version(settings, settings.model_name, CHAMPION)
    if version is None:
        raise ModelError(
            f"model {settings.model_name!r} has no @champion: train one (`mltrade train`) or "
            "set the alias in the MLflow UI"
        )
    return ModelRef(settings.model_name, version)


def predict(
    engine: sa.Engine, settings: Settings, as_of: date, run_id: str
) -> tuple[ModelRef, int]:
    """Predict with the champion from features dated ``as_of``; upsert ``predictions``."""
    ref = champion(settings)
    with stage_run(engine, run_id, "predict", as_of=as_of, model_version=ref.version) as run:
        # A champion set in the MLflow UI is used as is, and recorded as an external change.
        champions.observe(engine, settings, ref.name, ref.version, run_id)
        trained_on = registry.version_tags(settings, ref.name, ref.version).get(
            "feature_set_version"
        )
        if trained_on != FEATURE_SET.key:
            raise ModelError(
                f"{ref.name} v{ref.version} was trained on feature set {trained_on}, but the "
                f"store holds {FEATURE_SET.key}: retrain (`mltrade train`) before predicting"
            )
        features = load_features(engine, as_of, as_of)
        if features.empty:
            raise ModelError(f"no features dated {as_of}: run `mltrade features` first")
        model = registry.load_model(settings, ref.name, ref.version)
        expected = np.asarray(model.predict(features), dtype=float)
        rows = [
            {
                "m": ref.name,
                "v": ref.version,
                "d": as_of,
                "s": symbol,
                "r": float(value),
                "fsv": FEATURE_SET.key,
                "run": run_id,
            }
            for (_, symbol), value in zip(features.index, expected, strict=True)
        ]
        with engine.begin() as conn:
            conn.execute(sa.text(_UPSERT), rows)
        run.summary = {"rows": len(rows), "model_version": ref.version}
    return ref, len(rows)
