"""Training: fit on the window ending at ``as_of``, register, alias.

Idempotent: the training key hashes everything a fit depends on (feature set, window, model
parameters). A version already registered with that key is returned instead of a new one, so
rerunning a training task registers nothing new.

Aliases: the first model of a name becomes @champion (bootstrap: nothing to compare it with);
every later new version becomes @challenger and waits for the promotion gate. One version
carries two roles only when promotion made it so (see :func:`promote`).

The MLflow run shows the data (the feature window as training and validation datasets), the
validation metrics, an evaluation table, feature importance and validation plots
(:mod:`pipelines.models.diagnostics`), and the model version gets a description.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from pipelines import calendar
from pipelines.config import Settings
from pipelines.errors import ModelError
from pipelines.features import FEATURE_SET
from pipelines.features.store import forward_returns, load_features
from pipelines.models import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS_CHAMPION,
    ModelRef,
    champions,
    diagnostics,
    forest,
    ipca_returns,
    trees,
)
from pipelines.models.registry import MLflowRegistry, TrainingRecord, WarehouseFeatures
from pipelines.models.return_model import Registry
from pipelines.runlog import stage_run

log = logging.getLogger(__name__)
MIN_TRAINING_ROWS = 1_000
# MODEL_KIND -> a module with PARAMS and fit(features, target) -> (model, metrics)
KINDS = {"xgboost": trees, "random_forest": forest, "ipca": ipca_returns}


def training_window(settings: Settings, as_of: date) -> tuple[date, date, date]:
    """``(first, last, known)``: the feature dates used and the last close known at ``as_of``.

    Features span ``train_window_days`` sessions ending the session before ``known``, so the
    last label is the return into ``known``'s close: nothing after ``as_of`` is used.
    """
    known = calendar.sessions(as_of - timedelta(days=10), as_of)[-1]
    last = calendar.previous_session(known)
    span = timedelta(days=2 * settings.train_window_days + 10)
    days = calendar.sessions(last - span, last)[-settings.train_window_days :]
    return days[0], last, known


def train(
    engine: sa.Engine, registry: MLflowRegistry, settings: Settings, as_of: date, run_id: str
) -> ModelRef:
    """Train (or find) the model for ``as_of``; new versions become @challenger."""
    first, last, known = training_window(settings, as_of)
    key = hashlib.sha256(
        json.dumps(
            {
                "feature_set": FEATURE_SET.key,
                "first": str(first),
                "last": str(last),
                "params": KINDS[settings.model_kind].PARAMS,
                "model": settings.model_kind,
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]
    name = settings.model_name
    with stage_run(engine, run_id, "train", as_of=as_of, first=first, last=last) as run:
        version = registry.find_version(name, key)
        if version is None:
            version = _fit_and_register(engine, registry, settings, first, last, known, key)
            if registry.alias_version(name, CHAMPION) is None:
                registry.set_alias(name, CHAMPION, version)  # bootstrap: first model
                champions.record(engine, name, version, None, "bootstrap", run_id,
                                 "first model of this name")
            else:
                registry.set_alias(name, CHALLENGER, version)
        run.summary = {"model_name": name, "model_version": version, "training_key": key}
    return ModelRef(name, version)


def _fit_and_register(
    engine: sa.Engine,
    registry: MLflowRegistry,
    settings: Settings,
    first: date,
    last: date,
    known: date,
    key: str,
) -> str:
    features = load_features(engine, first, last)
    labels = forward_returns(engine, first, known).reindex(features.index)
    usable = labels.notna()
    if usable.sum() < MIN_TRAINING_ROWS:
        raise ModelError(
            f"only {int(usable.sum())} labelled feature rows between {first} and {last} "
            f"(need {MIN_TRAINING_ROWS}); load more history (`mltrade ingest`) and build "
            "features (`mltrade features`) first"
        )
    kind = KINDS[settings.model_kind]
    started = time.time()
    model, metrics = kind.fit(features[usable], labels[usable])
    name = settings.model_name
    log.info("trained %s on %s..%s: %s", name, first, last, metrics)
    tags = {
        "feature_set": FEATURE_SET.name,
        "feature_set_version": FEATURE_SET.key,
        "train_start": str(first),
        "train_end": str(last),
        "training_key": key,
    }
    with tempfile.TemporaryDirectory(prefix="mltrade-train-") as folder:
        record = _record(settings, model, features[usable], labels[usable], first, last, folder)
        record.started_at = started
        return registry.register(
            name,
            settings.model_kind,
            model,
            features[usable].head(5),
            kind.PARAMS,
            metrics,
            tags,
            record,
        )


def _record(
    settings: Settings,
    model: object,
    features: pd.DataFrame,
    labels: pd.Series,
    first: date,
    last: date,
    folder: str,
) -> TrainingRecord:
    """The datasets, diagnostics and description a training run logs beside the model."""
    held_out = settings.model_kind == "xgboost"  # the others are refitted on every date
    tables = diagnostics.write(Path(folder), model, features, labels, held_out)
    frame = features.assign(target=labels.to_numpy()).reset_index()
    in_val = frame["session_date"].isin(diagnostics.validation_dates(features))
    source = WarehouseFeatures(FEATURE_SET.name, FEATURE_SET.key, str(first), str(last))
    description = (
        f"{settings.model_kind} fitted on feature set {FEATURE_SET.name} "
        f"{FEATURE_SET.key}, sessions {first} to {last} ({len(features)} stock-days, "
        f"{features.index.get_level_values('symbol').nunique()} symbols), label: next-session "
        "simple return. Validation: the last 20% of those dates."
    )
    return TrainingRecord(
        source=source,
        train=frame[~in_val],
        validation=frame[in_val],
        artifacts=Path(folder),
        tables=tables,
        description=description,
    )


def promote(
    registry: Registry,
    model_name: str,
    version: str,
    engine: sa.Engine | None = None,
    source: str = "manual",
    run_id: str = "",
    reason: str = "",
) -> None:
    """Make ``version`` the champion, keeping the one it replaces as previous_champion.

    A @challenger on ``version`` is removed (it has won: no version carries two roles). With
    an ``engine`` the move is recorded in ``champion_changes`` as ``source``. A version that
    is not registered raises :class:`ModelError` before any alias moves.
    """
    registry.require_version(model_name, version)
    current = registry.alias_version(model_name, CHAMPION)
    if current == version:
        return
    if current is not None:
        registry.set_alias(model_name, PREVIOUS_CHAMPION, current)
    registry.set_alias(model_name, CHAMPION, version)
    if registry.alias_version(model_name, CHALLENGER) == version:
        registry.remove_alias(model_name, CHALLENGER)
    if engine is not None:
        champions.record(engine, model_name, version, current, source, run_id,
                         reason or f"{source}: v{current} -> v{version}")
