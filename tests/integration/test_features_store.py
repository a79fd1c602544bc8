from __future__ import annotations

from datetime import date

import pandas as pd
import sqlalchemy as sa

from pipelines.features import FEATURE_SET, characteristics
from pipelines.features.store import build_features, forward_returns, load_features

SYMBOLS = ["AAPL", "IBM", "MSFT", "XOM", "JNJ", "WMT", "KO", "PG"]


def _table(engine: sa.Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sa.text("SELECT * FROM features ORDER BY session_date, symbol"), conn)


def test_build_is_idempotent_and_a_range_equals_the_full_recompute(warehouse, load_sample_bars):
    load_sample_bars(SYMBOLS)
    rows = build_features(warehouse)
    full = _table(warehouse)
    assert rows == len(full) > 0
    assert set(full["feature_set_version"]) == {FEATURE_SET.key}

    assert build_features(warehouse) == rows
    pd.testing.assert_frame_equal(_table(warehouse), full)

    # Recomputing one month (reading its lookback) gives exactly the stored values.
    build_features(warehouse, date(2010, 6, 1), date(2010, 6, 30))
    pd.testing.assert_frame_equal(_table(warehouse), full)


def test_load_features_round_trips_the_ranks(warehouse, load_sample_bars):
    load_sample_bars(SYMBOLS)
    build_features(warehouse)
    loaded = load_features(warehouse, date(2010, 8, 2), date(2010, 8, 6))
    assert list(loaded.columns) == list(characteristics.NAMES)
    assert loaded.index.get_level_values("symbol").nunique() == len(SYMBOLS)
    assert loaded.abs().max().max() <= 0.5


def test_forward_returns_use_nothing_after_the_end(warehouse, load_sample_bars):
    load_sample_bars(["IBM"])
    labels = forward_returns(warehouse, date(2010, 8, 9), date(2010, 8, 12))
    with warehouse.connect() as conn:
        close = dict(conn.execute(sa.text(
            "SELECT session_date, close FROM bars WHERE symbol = 'IBM' "
            "AND session_date BETWEEN '2010-08-09' AND '2010-08-13'")).all())
    days = sorted(close)
    assert list(labels.index.get_level_values("session_date")) == days[:3]  # none for the end
    assert labels.iloc[0] == close[days[1]] / close[days[0]] - 1
