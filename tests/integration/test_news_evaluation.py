"""`models evaluate` with the sentiment set: a row with and one without, on the same folds.

On the offline fixtures the sentiment is random (pipelines/news/sources/fixtures.py), so this
proves the plumbing (alignment, same folds and rows), not that news predicts returns."""

from __future__ import annotations

from datetime import date

import pytest

from pipelines import calendar
from pipelines.config import get_settings
from pipelines.features import sentiment
from pipelines.features.store import build_features, load_feature_set, load_features
from pipelines.ingest_news import run_news
from pipelines.models import evaluation, forest, ipca_returns
from pipelines.sources.sample import SampleSource

pytestmark = pytest.mark.slow

SYMBOLS = sorted(SampleSource().universe())[:30]
START, END = date(2010, 7, 1), date(2010, 8, 19)


def test_the_gkx_table_gains_a_sentiment_row_on_the_same_folds(
    warehouse, load_sample_bars, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("MLTRADE_HOME", str(tmp_path))
    monkeypatch.setenv("UNIVERSE", ",".join(SYMBOLS))
    get_settings.cache_clear()
    load_sample_bars(SYMBOLS)
    build_features(warehouse)
    window = (
        sentiment.cutoff(calendar.previous_session(START)),
        sentiment.cutoff(date(2010, 8, 20)),
    )
    run_news(warehouse, get_settings(), ["fixtures"], *window, "t")

    features = load_features(warehouse, START, END)
    joined = evaluation.with_sentiment(warehouse, features)
    assert list(joined.columns) == [*features.columns, *sentiment.NAMES]
    stored = load_feature_set(
        warehouse,
        sentiment.SENTIMENT_SET,
        sentiment.NAMES,
        calendar.next_session(START),
        calendar.next_session(START),
    )
    symbol = stored.index[0][1]
    # Row dated D carries the sentiment known at the rebalance of the next session.
    assert joined.loc[(START, symbol), "sent_lm_mean"] == stored.iloc[0]["sent_lm_mean"]
    assert (joined["news_count"] > 0).mean() > 0.5

    spec = evaluation.EvaluationWindow(START, END, refit_every=20)
    kinds = {"random_forest": forest, "ipca": ipca_returns}
    table, details = evaluation.evaluate(warehouse, kinds, spec, sentiment=True)
    assert list(table.index) == [
        "random_forest",
        "ipca",
        "random_forest+sentiment",
        "ipca+sentiment",
        "zero",
    ]
    plain, _ = evaluation.evaluate(warehouse, {"ipca": ipca_returns}, spec)
    assert table.loc["ipca"].equals(plain.loc["ipca"])  # the price row is unchanged
    assert table.loc["random_forest+sentiment"].notna().all()
    assert not table.loc["random_forest+sentiment"].equals(table.loc["random_forest"])
    # IPCA needs full-rank characteristics; the sparse fixture sentiment is not: stated.
    assert "collinear" in details["failed"]["ipca+sentiment"]
    assert details["folds"] == 2
    get_settings.cache_clear()
