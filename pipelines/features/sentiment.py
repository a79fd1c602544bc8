"""Point-in-time sentiment features per symbol and session (the optional ``sentiment`` set).

A row dated session ``S`` describes the news a pre-market rebalance *for S* can know: items
published strictly before ``cutoff(S)`` = ``S`` at :data:`CUTOFF` New York time (07:30, half
an hour before the 08:00 rebalance DAG; ``zoneinfo`` applies DST, so it is 12:30 UTC in winter
and 11:30 UTC in summer). Columns:

- ``news_count``: stories (syndicated copies counted once) published in
  ``[cutoff(previous session), cutoff(S))``, the news since the last rebalance;
- ``sent_<scorer>_mean``: their mean score, 0 when there is none;
- ``sent_<scorer>_decay``: the mean score of stories of the last ``LOOKBACK`` before the
  cutoff, each weighted by ``0.5 ** (age / HALF_LIFE)``, 0 when there is none.

Scores are in ``[-1, 1]`` (pipelines/news/scoring.py). Only (session, symbol) pairs with a
story in the lookback get a row; a reader treats a missing row as no news (zeros).
To line these up with price features dated ``D`` (made at ``D``'s close, used by the
rebalance of the next session), join on ``S = next_session(D)``: :func:`aligned_to_price`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from pipelines import calendar
from pipelines.features import FeatureSet
from pipelines.news.scoring import SCORERS as SCORER_CLASSES

NEW_YORK = ZoneInfo(calendar.EXCHANGE_TZ)
CUTOFF = time(7, 30)
HALF_LIFE = timedelta(hours=24)
LOOKBACK = timedelta(days=7)
SCORERS = ("vader", "lm")

SENTIMENT_SET = FeatureSet(
    name="sentiment",
    version="1",
    definition={
        "cutoff_new_york": CUTOFF.isoformat(),
        "half_life_hours": HALF_LIFE.total_seconds() / 3600,
        "lookback_days": LOOKBACK.days,
        "scorers": {n: SCORER_CLASSES[n].version for n in ("vader", "lm")},
        "dedupe": "story_key, earliest copy",
        "missing": "no row (read as 0)",
    },
)
NAMES = ("news_count", *(f"sent_{s}_{k}" for s in SCORERS for k in ("mean", "decay")))


def cutoff(session: date) -> datetime:
    """The UTC instant before which news counts for ``session``'s rebalance."""
    return datetime.combine(session, CUTOFF, tzinfo=NEW_YORK).astimezone(UTC)


def input_window(first: date, last: date) -> tuple[datetime, datetime]:
    """``[start, end)`` of publication times the features of sessions ``[first, last]`` read."""
    earliest = min(cutoff(calendar.previous_session(first)), cutoff(first) - LOOKBACK)
    return earliest, cutoff(last)


def compute(items: pd.DataFrame, sessions: list[date]) -> pd.DataFrame:
    """Features of ``sessions`` from ``items`` (columns ``published_at`` (UTC), ``symbol``,
    ``score_<scorer>``): index (session_date, symbol), columns :data:`NAMES`."""
    frames = []
    if len(items):
        for session in sessions:
            frames.append(_one_session(items, session))
    frames = [f for f in frames if len(f)]
    if not frames:
        empty = pd.MultiIndex.from_arrays([[], []], names=["session_date", "symbol"])
        return pd.DataFrame(columns=list(NAMES), index=empty, dtype="float64")
    return pd.concat(frames).sort_index()[list(NAMES)]


def _one_session(items: pd.DataFrame, session: date) -> pd.DataFrame:
    end = pd.Timestamp(cutoff(session))
    since_last = pd.Timestamp(cutoff(calendar.previous_session(session)))
    known = items[(items.published_at < end) & (items.published_at >= end - LOOKBACK)]
    if known.empty:
        return pd.DataFrame()
    age_h = (end - known.published_at).dt.total_seconds() / 3600
    weight = np.power(0.5, age_h / (HALF_LIFE.total_seconds() / 3600))
    recent = known.published_at >= since_last
    out = pd.DataFrame(index=pd.Index(sorted(known.symbol.unique()), name="symbol"))
    out["news_count"] = recent.groupby(known.symbol).sum().astype("float64")
    for scorer in SCORERS:
        score = known[f"score_{scorer}"].astype("float64")
        has = score.notna()
        out[f"sent_{scorer}_mean"] = score.where(recent).groupby(known.symbol).mean()
        w = weight.where(has, 0.0)
        num = (w * score.fillna(0.0)).groupby(known.symbol).sum()
        den = w.groupby(known.symbol).sum()
        out[f"sent_{scorer}_decay"] = (num / den.where(den > 0)).astype("float64")
    out = out.fillna(0.0)
    out.insert(0, "session_date", session)
    return out.reset_index().set_index(["session_date", "symbol"])


def aligned_to_price(sentiment: pd.DataFrame, price_dates: list[date]) -> pd.DataFrame:
    """Sentiment rows re-dated to the price feature date ``D`` whose rebalance is
    ``S = next_session(D)``; index (session_date, symbol) with D."""
    if sentiment.empty:
        return sentiment
    to_price = {calendar.next_session(d): d for d in price_dates}
    frame = sentiment.reset_index()
    frame = frame[frame.session_date.isin(to_price.keys())]
    frame["session_date"] = frame.session_date.map(to_price)
    return frame.set_index(["session_date", "symbol"])
