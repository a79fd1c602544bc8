"""Predicted against realized returns in a real warehouse: which date is scored, point in time."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines import jobs
from pipelines.features.store import forward_returns
from pipelines.monitoring import metrics
from pipelines.monitoring.realized import latest_scores, score_day

START, END = date(2010, 3, 1), date(2010, 3, 31)  # END is a Wednesday
SYMBOLS = ["AAPL", "IBM", "MSFT", "XOM", "GE"]
FORECAST = {"AAPL": 0.004, "IBM": -0.002, "MSFT": 0.001, "XOM": 0.003, "GE": -0.001}


def _predict(engine: sa.Engine, model: str, version: str, day: date, shift: float = 0) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO predictions VALUES (:m, :v, :d, :s, :r, 'fs-test', 'run-test')"),
            [{"m": model, "v": version, "d": day, "s": s, "r": r + shift}
             for s, r in FORECAST.items()],
        )


@pytest.fixture
def warehouse_with_predictions(warehouse: sa.Engine) -> sa.Engine:
    jobs.ingest_bars(START, END, "run-scores", SYMBOLS)
    _predict(warehouse, "ipca", "2", date(2010, 3, 26))
    for day in (date(2010, 3, 29), date(2010, 3, 30), END):
        _predict(warehouse, "ipca", "3", day)
    _predict(warehouse, "trees", "7", date(2010, 3, 25), shift=0.01)
    return warehouse


def _by_model(scores) -> dict:
    return {(s.model_name, s.model_version): s for s in scores}


def test_the_newest_realized_date_is_scored_against_the_bars(warehouse_with_predictions) -> None:
    engine = warehouse_with_predictions
    with engine.connect() as conn:
        scores = _by_model(latest_scores(conn))
    # END's predictions wait for April 1st's close; March 30th's were realized at END's.
    ipca = scores[("ipca", "3")]
    assert (ipca.session_date, ipca.realized_session) == (date(2010, 3, 30), END)
    assert ("ipca", "2") not in scores  # an older date of the same model is not scored
    trees = scores[("trees", "7")]
    assert (trees.session_date, trees.realized_session) == (date(2010, 3, 25), date(2010, 3, 26))

    realized = forward_returns(engine, date(2010, 3, 30), END).xs(date(2010, 3, 30))
    expected = score_day(pd.Series(FORECAST), realized)
    assert ipca.score == expected and ipca.score.symbols == len(SYMBOLS)
    realized = forward_returns(engine, date(2010, 3, 25), date(2010, 3, 26)).xs(date(2010, 3, 25))
    assert trees.score == score_day(pd.Series(FORECAST) + 0.01, realized)


def test_scores_as_of_a_date_equal_scores_on_data_truncated_there(
    warehouse_with_predictions,
) -> None:
    engine = warehouse_with_predictions
    as_of = date(2010, 3, 30)
    with engine.connect() as conn:
        before = latest_scores(conn, as_of)
    assert {(s.model_name, s.session_date) for s in before} == {
        ("ipca", date(2010, 3, 29)), ("trees", date(2010, 3, 25))}
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM bars WHERE session_date > :d"), {"d": as_of})
    with engine.connect() as conn:
        assert latest_scores(conn) == before


def test_the_collector_serves_them_labelled_by_model_and_version(
    warehouse_with_predictions,
) -> None:
    collector = metrics.WarehouseCollector(warehouse_with_predictions)
    families = {m.name: m for m in collector.collect()}
    samples = {(s.name, s.labels["model"], s.labels["version"]): s.value
               for name in ("mltrade_prediction_rank_ic", "mltrade_prediction_mae",
                            "mltrade_prediction_hit_ratio", "mltrade_prediction_scored_symbols",
                            "mltrade_prediction_scored_session_timestamp_seconds")
               for s in families[name].samples}
    assert samples[("mltrade_prediction_scored_symbols", "ipca", "3")] == len(SYMBOLS)
    assert samples[("mltrade_prediction_scored_session_timestamp_seconds", "ipca", "3")] == (
        metrics._session_close_ts(date(2010, 3, 30)))
    assert -1 <= samples[("mltrade_prediction_rank_ic", "trees", "7")] <= 1
    assert {n for n, _, _ in samples} <= metrics.metric_names()
