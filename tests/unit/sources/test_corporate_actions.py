"""Corporate actions: the adjustment factors against a hand example and against yfinance's own
``Adj Close`` on recorded data; the table's upsert; the Yahoo path end to end."""

from __future__ import annotations

import os
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.errors import DataSourceError
from pipelines.ratelimit import TokenBucket
from pipelines.sources.retry import RetryPolicy
from pipelines.sources.yahoo import YahooSource
from pipelines.warehouse.corporate_actions import (
    adjusted_prices,
    load_corporate_actions,
    read_corporate_actions,
    upsert_corporate_actions,
)
from tests.unit.sources.yahoo_fixtures import Chart, FakeYahoo

os.environ["YF_DISABLE_CURL_CFFI"] = "1"
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")


def _bars(symbol: str, days: list[date], closes: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": symbol,
            "ts": pd.NaT,
            "session_date": days,
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "volume": 1000.0,
        }
    )


def _actions(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["symbol", "ex_date", "kind", "value", "source"])


DAYS = [date(2010, 1, d) for d in (4, 5, 6, 7, 8)]


def test_hand_example_two_for_one_split_then_one_dollar_dividend() -> None:
    # As traded: 100, 102, then a 2:1 split (ex 01-06): 51, 52, then a $1 dividend (ex 01-08): 50.
    bars = _bars("X", DAYS, [100.0, 102.0, 51.0, 52.0, 50.0])
    actions = _actions([("X", DAYS[2], "split", 2.0, "t"), ("X", DAYS[4], "dividend", 1.0, "t")])
    out = adjusted_prices(bars, actions)
    d = 51 / 52  # 1 - D / previous close
    assert out["adj_close"].tolist() == pytest.approx(
        [100 / 2 * d, 102 / 2 * d, 51 * d, 52 * d, 50.0]
    )
    assert out["adj_volume"].tolist() == [2000.0, 2000.0, 1000.0, 1000.0, 1000.0]
    split_only = adjusted_prices(bars, actions, dividends=False)
    assert split_only["adj_close"].tolist() == pytest.approx([50.0, 51.0, 51.0, 52.0, 50.0])
    # Across the ex-date the adjusted return is C1 / (C0 - D).
    assert out["adj_close"].iloc[4] / out["adj_close"].iloc[3] == pytest.approx(50 / 51)


def test_split_and_dividend_on_the_same_ex_date_use_post_split_close() -> None:
    bars = _bars("X", DAYS[:2], [100.0, 50.0])
    actions = _actions([("X", DAYS[1], "split", 2.0, "t"), ("X", DAYS[1], "dividend", 1.0, "t")])
    out = adjusted_prices(bars, actions)
    assert out["adj_close"].iloc[0] == pytest.approx(100 / 2 * (1 - 1 / 50))


def test_a_dividend_above_the_price_is_refused() -> None:
    bars = _bars("X", DAYS[:2], [10.0, 9.0])
    with pytest.raises(DataSourceError, match="not below the previous close"):
        adjusted_prices(bars, _actions([("X", DAYS[1], "dividend", 12.0, "t")]))


# Recorded Yahoo data as yfinance returned it (auto_adjust=False, actions=True): Cal-Maine Foods
# (CALM), 2022-04-19 .. 2022-05-03, around a $0.125 dividend with ex-date 2022-04-26. Rows taken
# from yfinance's own test data, tests/data/CALM-1d-no-bad-divs.csv (Apache-2.0), commit a74ad47.
CALM = [  # date, Close, Adj Close, Dividends
    ("2022-04-19", 55.5, 48.037296295166016, 0.0),
    ("2022-04-20", 56.349998474121094, 48.77299499511719, 0.0),
    ("2022-04-21", 56.38999938964844, 48.807621002197266, 0.0),
    ("2022-04-22", 56.52000045776367, 48.92014694213867, 0.0),
    ("2022-04-25", 54.43000030517578, 47.111167907714844, 0.0),
    ("2022-04-26", 53.47999954223633, 46.39545440673828, 0.125),
    ("2022-04-27", 54.279998779296875, 47.0894775390625, 0.0),
    ("2022-04-28", 55.220001220703125, 47.90495300292969, 0.0),
    ("2022-04-29", 53.72999954223633, 46.612335205078125, 0.0),
    ("2022-05-02", 53.849998474121094, 46.71644592285156, 0.0),
    ("2022-05-03", 54.439998626708984, 47.22827911376953, 0.0),
]


def test_factors_match_yfinance_adj_close_on_recorded_data() -> None:
    days = [date.fromisoformat(r[0]) for r in CALM]
    bars = _bars("CALM", days, [r[1] for r in CALM])
    paid = [(d, r[3]) for d, r in zip(days, CALM, strict=True) if r[3]]
    actions = _actions([("CALM", d, "dividend", cash, "yahoo") for d, cash in paid])
    ours = adjusted_prices(bars, actions)["adj_close"]
    yahoo = pd.Series([r[2] for r in CALM])
    # Later dividends (outside the window) scale all of Yahoo's rows alike: the ratio is flat.
    ratio = yahoo / ours
    assert ratio.max() / ratio.min() - 1 < 1e-6
    # Without the dividend it is not: the check can fail.
    plain = yahoo / bars["close"]
    assert plain.max() / plain.min() - 1 > 1e-3


def test_yahoo_actions_reproduce_yahoos_adj_close_end_to_end(tmp_path) -> None:
    import yfinance as yf

    yf.set_tz_cache_location(str(tmp_path))
    start, end = date(2010, 1, 4), date(2010, 3, 31)
    split, dividend = date(2010, 2, 16), date(2010, 2, 8)
    fake = FakeYahoo([Chart("IBM", start, end, splits={split: 2.0}, dividends={dividend: 0.55})])
    source = YahooSource(
        session=fake.session, retry=RetryPolicy(1, 0, 0), bucket=TokenBucket(1_000_000)
    )
    fetched = source.fetch(start, end, ["IBM"])
    ours = adjusted_prices(fetched.result.bars, fetched.actions)
    theirs = yf.Ticker("IBM", session=fake.session).history(
        start="2010-01-04", end="2010-04-01", auto_adjust=False, actions=True
    )
    assert ours["adj_close"].tolist() == pytest.approx(theirs["Adj Close"].tolist(), rel=1e-9)


def test_upsert_is_idempotent_and_restatements_replace(warehouse: sa.Engine) -> None:
    actions = _actions(
        [("IBM", date(2010, 2, 8), "dividend", 0.55, "yahoo"), ("X", DAYS[2], "split", 2.0, "t")]
    )
    with warehouse.begin() as conn:
        assert upsert_corporate_actions(conn, actions) == 2
    with warehouse.begin() as conn:
        assert upsert_corporate_actions(conn, actions) == 0
    restated = actions.assign(value=[0.56, 2.0])
    with warehouse.begin() as conn:
        assert upsert_corporate_actions(conn, restated) == 1
    got = read_corporate_actions(warehouse, date(2010, 1, 1), date(2010, 12, 31))
    assert list(got.itertuples(index=False, name=None)) == [
        ("IBM", date(2010, 2, 8), "dividend", 0.56, "yahoo"),
        ("X", DAYS[2], "split", 2.0, "t"),
    ]
    assert read_corporate_actions(warehouse, DAYS[0], DAYS[-1], ["IBM"]).empty
    with pytest.raises(DataSourceError, match="non-positive"), warehouse.begin() as conn:
        upsert_corporate_actions(conn, actions.assign(value=[-1.0, 2.0]))
    with pytest.raises(sa.exc.IntegrityError), warehouse.begin() as conn:  # the CHECK holds too
        conn.execute(
            sa.text("INSERT INTO corporate_actions VALUES ('Y', '2010-01-04', 'merger', 1, 't')")
        )


def test_load_corporate_actions_from_a_source(warehouse: sa.Engine, tmp_path) -> None:
    import yfinance as yf

    from pipelines.sources.sample import SampleSource

    yf.set_tz_cache_location(str(tmp_path))
    start, end = date(2010, 1, 4), date(2010, 3, 31)
    fake = FakeYahoo([Chart("IBM", start, end, dividends={date(2010, 2, 8): 0.55})])
    source = YahooSource(
        session=fake.session, retry=RetryPolicy(1, 0, 0), bucket=TokenBucket(1_000_000)
    )
    assert load_corporate_actions(warehouse, source, start, end, ["IBM"]) == 1
    assert load_corporate_actions(warehouse, source, start, end, ["IBM"]) == 0  # a rerun
    assert load_corporate_actions(warehouse, SampleSource(), start, end, ["IBM"]) == 0
    got = read_corporate_actions(warehouse, start, end)
    assert list(got.itertuples(index=False, name=None)) == [
        ("IBM", date(2010, 2, 8), "dividend", pytest.approx(0.55), "yahoo")
    ]
