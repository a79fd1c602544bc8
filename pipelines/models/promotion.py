"""Promotion: compare @challenger with @champion on the same window, move @champion if better.

Both versions predict the same feature rows (the ``promotion_window_days`` sessions ending the
session before ``as_of``), scored against the realized next-session returns. The gate passes
when the challenger's mean daily rank IC beats the champion's by at least
``PROMOTION_MIN_IC_GAIN``. ``@previous_champion`` keeps the version replaced, for rollback.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines import calendar
from pipelines.config import Settings
from pipelines.errors import ModelError
from pipelines.features.store import forward_returns, load_features
from pipelines.models import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, ModelRef
from pipelines.models.return_model import Registry
from pipelines.models.training import promote


def evaluate(
    engine: sa.Engine, registry: Registry, ref: ModelRef, start: date, end: date, known: date
) -> dict[str, float]:
    """Scores of ``ref`` on features dated ``[start, end]`` against returns through ``known``.

    ``r2_zero``: uncentred R² against a zero forecast (pooled); ``rank_ic``: the mean over
    dates of the cross-sectional Spearman correlation of forecast and realized return.
    """
    features = load_features(engine, start, end)
    realized = forward_returns(engine, start, known).reindex(features.index)
    usable = realized.notna()
    if usable.sum() == 0:
        raise ModelError(f"no realized returns for features {start}..{end}: load newer bars")
    model = registry.load(ref)
    frame = pd.DataFrame(
        {
            "forecast": model.predict(features[usable]).to_numpy(),
            "realized": realized[usable].to_numpy(),
        },
        index=features.index[usable],
    )
    per_date = frame.groupby(level="session_date").apply(
        lambda day: day["forecast"].corr(day["realized"], method="spearman")
    )
    errors = frame["realized"] - frame["forecast"]
    return {
        "r2_zero": float(1 - np.sum(errors**2) / np.sum(frame["realized"] ** 2)),
        "rank_ic": float(per_date.mean()),
        "rows": float(len(frame)),
    }


def gated_promotion(
    engine: sa.Engine, registry: Registry, settings: Settings, as_of: date, run_id: str = ""
) -> dict:
    """Promote @challenger over @champion if it scores better on the same window."""
    name = settings.model_name
    champion = registry.alias_version(name, CHAMPION)
    challenger = registry.alias_version(name, CHALLENGER)
    if champion is None:
        raise ModelError(f"{name} has no @champion: train a model first (`mltrade train`)")
    if challenger is None:
        return {"champion": champion, "challenger": None, "promoted": False,
                "reason": "no @challenger waiting: train a new version first"}
    known = calendar.sessions(as_of - pd.Timedelta(days=10), as_of)[-1]
    end = calendar.previous_session(known)
    days = calendar.sessions(end - pd.Timedelta(days=3 * settings.promotion_window_days), end)
    start = days[-settings.promotion_window_days]
    decision: dict = {
        "window": [str(start), str(end)],
        "champion": champion,
        "challenger": challenger,
    }
    if challenger == champion:
        return {**decision, "promoted": False, "reason": "challenger is already champion"}
    scores = {
        v: evaluate(engine, registry, ModelRef(name, v), start, end, known)
        for v in (champion, challenger)
    }
    gain = scores[challenger]["rank_ic"] - scores[champion]["rank_ic"]
    promoted = gain >= settings.promotion_min_ic_gain
    reason = f"rank IC gain {gain:+.4f} vs required {settings.promotion_min_ic_gain:+.4f}"
    if promoted:
        promote(registry, name, challenger, engine, "gate", run_id, reason)
    return {
        **decision,
        "scores": scores,
        "rank_ic_gain": gain,
        "promoted": promoted,
        "reason": reason,
    }


def rollback(
    registry: Registry, name: str, engine: sa.Engine | None = None, run_id: str = ""
) -> dict:
    """Point ``name@champion`` back at @previous_champion (recorded when an ``engine`` is
    given)."""
    previous = registry.alias_version(name, PREVIOUS_CHAMPION)
    if previous is None:
        raise ModelError(f"{name} has no @previous_champion to roll back to")
    current = registry.alias_version(name, CHAMPION)
    promote(registry, name, previous, engine, "rollback", run_id)
    return {"champion": previous, "previous_champion": current}
