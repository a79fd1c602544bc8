"""Predicted against realized returns: how the champion's forecasts fared once the market said.

A row of ``predictions`` dated D is the expected simple return of a symbol from D's close to the
close :data:`HORIZON_SESSIONS` NYSE sessions later (the label the models are trained on:
:func:`pipelines.features.store.forward_returns`, unadjusted closes). Only ``predict`` writes
that table, with the @champion, so its rows are the champion's forecasts, version by version.

Point in time: a prediction date D is *realized* at session R (the horizon-th session after D)
once bars dated R are in the warehouse and R is on or before the as-of date; nothing later is
read. :func:`latest_scores` scores, per model name, the newest realized prediction date, one
score per model version that predicted on it. Scores of one date's cross-section:

* ``rank_ic``: Spearman correlation of expected and realized returns (average ranks for ties);
* ``mae``: mean absolute error, in return units (0.01 = one percentage point);
* ``hit_ratio``: share of symbols whose expected and realized returns lie on the same side of
  their cross-sectional means (a market-wide move is not a hit), as in
  :func:`pipelines.backtest.metrics.directional_accuracy`; symbols exactly at a mean are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines import calendar
from pipelines.warehouse import bars, predictions

HORIZON_SESSIONS = 1  # the label horizon: next-session returns


@dataclass(frozen=True)
class DayScore:
    """Scores of one date's cross-section (NaN where fewer than 3 symbols, or no spread)."""

    rank_ic: float
    mae: float
    hit_ratio: float
    symbols: int


@dataclass(frozen=True)
class PredictionScore:
    """How ``model_name`` v``model_version``'s predictions dated ``session_date`` fared."""

    model_name: str
    model_version: str
    session_date: date  # the prediction date D
    realized_session: date  # the session whose close realizes D's labels
    score: DayScore


def score_day(expected: pd.Series, realized: pd.Series) -> DayScore:
    """Score one date's predictions against realized returns (both indexed by symbol).

    Rows are put in symbol order first, so the score does not depend on the order the
    warehouse returned them in (a float sum is order-sensitive in its last bits).
    """
    frame = pd.DataFrame({"e": expected, "r": realized}).dropna().sort_index()
    n = len(frame)
    if n == 0:
        return DayScore(float("nan"), float("nan"), float("nan"), 0)
    mae = float((frame["r"] - frame["e"]).abs().mean())
    rank_ic = float("nan")
    if n >= 3:
        ranks = frame.rank()  # average ranks: Spearman's rho is Pearson's r of the ranks
        if ranks["e"].std() > 0 and ranks["r"].std() > 0:
            rank_ic = float(np.corrcoef(ranks["e"], ranks["r"])[0, 1])
    e, r = frame["e"] - frame["e"].mean(), frame["r"] - frame["r"].mean()
    moved = (e != 0) & (r != 0)
    hit = float((np.sign(e[moved]) == np.sign(r[moved])).mean()) if moved.any() else float("nan")
    return DayScore(rank_ic, mae, hit, n)


def realization_session(day: date, horizon: int = HORIZON_SESSIONS) -> date:
    """The session whose close realizes the label of a prediction dated ``day``."""
    for _ in range(horizon):
        day = calendar.next_session(day)
    return day


def latest_scores(conn: sa.Connection, as_of: date | None = None) -> list[PredictionScore]:
    """Per model name, the scores of its newest prediction date realized by ``as_of``.

    ``as_of`` None: whatever the warehouse holds. Empty when nothing is realized yet.
    """
    newest = bars.latest_session(conn, as_of or date.max)
    if newest is None:
        return []
    candidates = predictions.dates_before(conn, newest)
    scores: list[PredictionScore] = []
    done: set[str] = set()
    for model_name, day in candidates:
        if model_name in done:
            continue
        realized_on = realization_session(day)
        if realized_on > newest:
            continue  # its horizon has not passed yet: try an earlier date
        rows = predictions.with_realized(conn, model_name, day, realized_on)
        if rows.empty:
            continue  # no bars for its symbols on D or R (a gap in the data): an earlier date
        done.add(model_name)
        for version, group in rows.groupby("version", sort=True):
            day_score = score_day(group.set_index("symbol")["expected"],
                                  group.set_index("symbol")["realized"])
            scores.append(PredictionScore(model_name, str(version), day, realized_on, day_score))
    return scores
