"""Out-of-sample evaluation of every model kind on one window, in the Gu–Kelly–Xiu format.

Every kind (``xgboost``, ``random_forest``, ``ipca``) and a zero-forecast baseline are scored
on the same feature dates, each forecast made walk-forward (:mod:`walk_forward`: refitted on
the past only, purged and embargoed). Metrics, all on daily next-session simple returns:

* ``r2_oos``: ``1 − Σ(r − r̂)² / Σ r²`` pooled over rows, against a zero forecast
  (uncentred, as GKX: the baseline scores exactly 0).
* ``rank_ic``: mean over dates of the cross-sectional Spearman correlation of forecast and
  realized return (dates where either is constant are skipped).
* ``sharpe_ew``, ``sharpe_vw``: annualized (× √252) Sharpe ratio of the daily decile
  long-short return: each date, stocks are sorted into ten groups by forecast (ties broken by
  symbol order), long the top group and short the bottom one, each leg summing to 1 (+1 long,
  −1 short). Equal weights, or value weights proportional to a size proxy.
* ``turnover_ew``, ``turnover_vw``: mean over consecutive dates of ½ Σ_i |w_{i,t} − w_{i,t−1}|
  for that long-short book (no drift adjustment): 0 unchanged, 1 one leg's worth replaced,
  2 both legs replaced.

The size proxy for value weights is the mean daily dollar volume (close × volume) over the
21 sessions through t: the bars carry no shares outstanding, so market capitalization is not
available, and dollar volume is the size measure the feature set already uses
(``log_dollar_volume_21d``); in the cross-section it tracks capitalization closely.
A date with fewer than ten stocks, or a forecast constant across stocks (the baseline), forms
no portfolio; a metric with no date to average is NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines import calendar
from pipelines.config import Settings
from pipelines.errors import ModelError
from pipelines.features import FEATURE_SET
from pipelines.features.store import forward_returns, load_features
from pipelines.models import walk_forward
from pipelines.warehouse import bars

ANNUALIZATION = 252
GROUPS = 10
SIZE_WINDOW = 21
METRICS = ("r2_oos", "rank_ic", "sharpe_ew", "sharpe_vw", "turnover_ew", "turnover_vw")
BASELINE = "zero"


def r2_oos(forecast: np.ndarray, realized: np.ndarray) -> float:
    """Pooled out-of-sample R² against a zero forecast (uncentred)."""
    forecast, realized = np.asarray(forecast, float), np.asarray(realized, float)
    return float(1 - np.sum((realized - forecast) ** 2) / np.sum(realized**2))


def _by_date(frame: pd.DataFrame | pd.Series) -> Any:
    return frame.groupby(level="session_date", sort=True)


def rank_ic(frame: pd.DataFrame) -> float:
    """Mean daily Spearman correlation of ``forecast`` and ``realized`` (average ranks for ties)."""
    ranks = _by_date(frame[["forecast", "realized"]]).rank()
    spread = _by_date(ranks).transform("std")
    usable = (spread["forecast"] > 0) & (spread["realized"] > 0)
    if not usable.any():
        return float("nan")
    per_date = _by_date(ranks[usable]).apply(lambda day: day["forecast"].corr(day["realized"]))
    return float(per_date.mean())


def decile_weights(frame: pd.DataFrame, size: str | None = None) -> pd.Series:
    """Long-short weights per (session_date, symbol): top group +, bottom group −.

    Each date the stocks are split into :data:`GROUPS` groups of (nearly) equal count by
    ``forecast``; each leg's weights sum to 1 in absolute value, equal or proportional to
    column ``size``. Dates with fewer than ``GROUPS`` stocks or a constant forecast are left out.
    """
    by_date = _by_date(frame["forecast"])
    count = by_date.transform("size")
    spread = by_date.transform("max") - by_date.transform("min")
    usable = (count >= GROUPS) & (spread > 0)
    data = frame[usable]
    if data.empty:
        return pd.Series(dtype=float, name="weight")
    order = _by_date(data["forecast"]).rank(method="first")
    group = np.floor((order - 1) * GROUPS / count[usable]).astype(int)
    side = np.where(group == GROUPS - 1, 1.0, np.where(group == 0, -1.0, 0.0))
    raw = data[size].to_numpy(float) if size is not None else np.ones(len(data))
    raw = np.where(side != 0, raw, 0.0)
    legs = pd.DataFrame(
        {"raw": raw, "side": side, "date": data.index.get_level_values("session_date")},
        index=data.index,
    )
    leg_total = legs.groupby(["date", "side"])["raw"].transform("sum")
    weights = np.where(side != 0, side * raw / leg_total.where(leg_total > 0), 0.0)
    return pd.Series(weights, index=data.index, name="weight")


def long_short_returns(weights: pd.Series, realized: pd.Series) -> pd.Series:
    """Daily return of the long-short book: Σ_i w_{i,t} r_{i,t+1}."""
    product = weights * realized.reindex(weights.index)
    return product.groupby(level="session_date").sum()


def sharpe(returns: pd.Series) -> float:
    """Annualized Sharpe ratio of daily returns: mean / sd (n − 1) × √252."""
    if len(returns) < 2 or returns.std(ddof=1) == 0:
        return float("nan")
    return float(returns.mean() / returns.std(ddof=1) * np.sqrt(ANNUALIZATION))


def turnover(weights: pd.Series) -> float:
    """Mean over consecutive dates of ½ Σ_i |w_{i,t} − w_{i,t−1}| (absent names weigh 0)."""
    table = weights.unstack("symbol", fill_value=0.0).fillna(0.0).sort_index()
    if len(table) < 2:
        return float("nan")
    return float((table.diff().iloc[1:].abs().sum(axis=1) / 2).mean())


def score(frame: pd.DataFrame) -> dict[str, float]:
    """Every metric for rows with ``forecast``, ``realized`` and ``size``."""
    ew = decile_weights(frame)
    vw = decile_weights(frame.dropna(subset=["size"]), size="size")
    return {
        "r2_oos": r2_oos(frame["forecast"].to_numpy(), frame["realized"].to_numpy()),
        "rank_ic": rank_ic(frame),
        "sharpe_ew": sharpe(long_short_returns(ew, frame["realized"])) if len(ew) else np.nan,
        "sharpe_vw": sharpe(long_short_returns(vw, frame["realized"])) if len(vw) else np.nan,
        "turnover_ew": turnover(ew) if len(ew) else np.nan,
        "turnover_vw": turnover(vw) if len(vw) else np.nan,
    }


@dataclass(frozen=True)
class EvaluationWindow:
    start: date  # first out-of-sample feature date
    end: date  # last out-of-sample feature date
    refit_every: int = 21
    window: int | None = None  # training dates; None = expanding
    purge: int = 1
    embargo: int = 0


def with_sentiment(engine: sa.Engine, features: pd.DataFrame) -> pd.DataFrame:
    """``features`` plus the optional sentiment set (pipelines/features/sentiment.py), known at
    each row's rebalance (``S = next_session(D)``); no news is 0. ``news_count`` enters as
    ``log1p`` so its scale is near the ranked characteristics'."""
    from pipelines.features import sentiment
    from pipelines.features.store import load_feature_set

    dates = sorted(set(features.index.get_level_values("session_date")))
    if not dates:
        return features
    news = load_feature_set(
        engine,
        sentiment.SENTIMENT_SET,
        sentiment.NAMES,
        dates[0],
        calendar.next_session(dates[-1]),
    )
    aligned = sentiment.aligned_to_price(news, dates).reindex(features.index).fillna(0.0)
    aligned["news_count"] = np.log1p(aligned["news_count"])
    return features.join(aligned)


def evaluate(
    engine: sa.Engine, kinds: dict, spec: EvaluationWindow, sentiment: bool = False
) -> tuple[pd.DataFrame, dict[str, object]]:
    """The GKX table (one row per model kind, plus the zero baseline) and run details.

    ``kinds`` maps a name to a module with ``fit(features, labels) -> (model, metrics)``.
    Every kind is refitted walk-forward on the same folds and scored on the same rows. With
    ``sentiment``, each kind gets a second row ``<kind>+sentiment`` fitted on the price
    features plus the sentiment set (:func:`with_sentiment`), same folds, same rows.
    """
    first = date(1900, 1, 1)
    features = load_features(engine, first, spec.end)
    if features.empty:
        raise ModelError(f"no features through {spec.end}: run `mltrade features` first")
    labels = forward_returns(engine, first, calendar.next_session(spec.end)).reindex(features.index)
    dates = sorted(set(features.index.get_level_values("session_date")))
    folds = walk_forward.make_folds(
        dates,
        spec.start,
        spec.end,
        refit_every=spec.refit_every,
        window=spec.window,
        purge=spec.purge,
        embargo=spec.embargo,
    )
    test_dates = [d for fold in folds for d in fold.test]
    in_test = features.index.get_level_values("session_date").isin(test_dates)
    realized = labels[in_test].dropna()
    if realized.empty:
        raise ModelError(
            f"no realized returns for features {spec.start}..{spec.end}: load newer bars"
        )
    dollar_volume = bars.mean_dollar_volume(engine, test_dates[0], test_dates[-1], SIZE_WINDOW)
    size = dollar_volume.reindex(realized.index)
    rows = {}
    variants = {"": features}
    if sentiment:
        variants["+sentiment"] = with_sentiment(engine, features)
    failed: dict[str, str] = {}
    for suffix, inputs in variants.items():
        for name, kind in kinds.items():
            try:
                forecast = walk_forward.forecasts(inputs, labels, kind.fit, folds)
            except ModelError as exc:
                if not suffix:
                    raise
                # e.g. IPCA refuses characteristics that are collinear on this window; the
                # table says so instead of losing the other rows.
                failed[name + suffix] = str(exc)
                rows[name + suffix] = dict.fromkeys(METRICS, float("nan"))
                continue
            frame = pd.DataFrame(
                {"forecast": forecast.reindex(realized.index), "realized": realized, "size": size}
            )
            rows[name + suffix] = score(frame)
    baseline = pd.DataFrame({"forecast": 0.0, "realized": realized, "size": size})
    rows[BASELINE] = score(baseline)
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(METRICS))
    table.index.name = "model"
    details: dict[str, object] = {
        "oos_start": str(test_dates[0]),
        "oos_end": str(test_dates[-1]),
        "oos_dates": len(test_dates),
        "oos_rows": len(realized),
        "folds": len(folds),
        "first_train_date": str(folds[0].train[0]),
        "refit_every": spec.refit_every,
        "window": "expanding" if spec.window is None else spec.window,
        "purge": spec.purge,
        "embargo": spec.embargo,
        "value_weight": f"mean dollar volume over {SIZE_WINDOW} sessions",
    }
    if failed:
        details["failed"] = failed
    return table, details


def markdown(table: pd.DataFrame) -> str:
    """The table as Markdown (NaN shown as an em dash)."""
    header = "| model | " + " | ".join(table.columns) + " |"
    rule = "|---|" + "---:|" * len(table.columns)
    lines = [header, rule]
    for model, row in table.iterrows():
        cells = ["—" if not np.isfinite(v) else f"{v:.4f}" for v in row.to_numpy(float)]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def evaluate_and_log(
    engine: sa.Engine,
    settings: Settings,
    spec: EvaluationWindow,
    run_id: str,
    sentiment: bool = False,
) -> dict[str, object]:
    """Evaluate every model kind on ``spec``'s window (and, with ``sentiment``, again with the
    sentiment set); log metrics and the table to MLflow (experiment ``mltrade-evaluation``;
    the run starts when the evaluation did)."""
    import time

    from pipelines.models import registry
    from pipelines.models.training import KINDS

    started = time.time()
    table, details = evaluate(engine, KINDS, spec, sentiment)
    details["sentiment"] = sentiment
    metrics = {
        f"{model}.{column}": float(value)
        for model, row in table.iterrows()
        for column, value in row.items()
    }
    mlflow_run = registry.log_evaluation(
        settings,
        metrics,
        details,
        {"run_id": run_id, "feature_set_version": FEATURE_SET.key},
        {"evaluation.md": markdown(table), "evaluation.csv": table.to_csv()},
        started_at=started,
        table=table,
    )
    return {
        **details,
        "mlflow_run_id": mlflow_run,
        "markdown": markdown(table),
        "table": {
            model: {k: (None if not np.isfinite(v) else round(float(v), 6)) for k, v in row.items()}
            for model, row in table.iterrows()
        },
    }
