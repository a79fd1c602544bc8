"""Training: fit on the window ending at ``as_of``, register, alias.

Idempotent: the training key hashes everything a fit depends on (feature set, window, model
parameters). A version already registered with that key is returned instead of a new one, so
rerunning a training task registers nothing new.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import date, timedelta

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
    forest,
    ipca_returns,
    registry,
    trees,
)
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


def train(engine: sa.Engine, settings: Settings, as_of: date, run_id: str) -> ModelRef:
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
        version = registry.find_version(settings, name, key)
        if version is None:
            version = _fit_and_register(engine, settings, name, first, last, known, key)
            registry.set_alias(settings, name, CHALLENGER, version)
        if registry.get_alias_version(settings, name, CHAMPION) is None:
            registry.set_alias(settings, name, CHAMPION, version)  # bootstrap: first model
        run.summary = {"model_name": name, "model_version": version, "training_key": key}
    return ModelRef(name, version)


def _fit_and_register(
    engine: sa.Engine, settings: Settings, name: str, first: date, last: date, known: date, key: str
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
    model, metrics = kind.fit(features[usable], labels[usable])
    log.info("trained %s on %s..%s: %s", name, first, last, metrics)
    tags = {
        "feature_set": FEATURE_SET.name,
        "feature_set_version": FEATURE_SET.key,
        "train_start": str(first),
        "train_end": str(last),
        "training_key": key,
    }
    return registry.log_model(
        settings,
        name,
        settings.model_kind,
        model,
        features[usable].head(5),
        kind.PARAMS,
        metrics,
        tags,
    )


def promote(settings: Settings, model_name: str, version: str) -> None:
    """Make ``version`` the champion, keeping the one it replaces as previous_champion."""
    current = registry.get_alias_version(settings, model_name, CHAMPION)
    if current == version:
        return
    if current is not None:
        registry.set_alias(settings, model_name, PREVIOUS_CHAMPION, current)
    registry.set_alias(settings, model_name, CHAMPION, version)
