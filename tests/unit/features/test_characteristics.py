from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines import calendar
from pipelines.features import FEATURE_SET, characteristics

SESSIONS = calendar.sessions(date(2010, 1, 4), date(2010, 12, 31))


def _panel(n_symbols: int = 4, n_sessions: int = 140, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = SESSIONS[:n_sessions]
    rows = []
    for k in range(n_symbols):
        close = 20 * (k + 1) * np.exp(np.cumsum(rng.normal(0, 0.02, len(days))))
        volume = rng.integers(1_000, 50_000, len(days)).astype(float)
        spread = rng.uniform(0.005, 0.03, len(days))
        rows += [{"symbol": f"S{k}", "session_date": d, "close": c, "volume": v,
                  "high": c * (1 + h), "low": c * (1 - h)}
                 for d, c, v, h in zip(days, close, volume, spread, strict=True)]
    return pd.DataFrame(rows)


def test_raw_values_match_hand_computation() -> None:
    bars = _panel()
    raw = characteristics.raw_characteristics(bars)
    last = SESSIONS[139]
    one = bars[bars.symbol == "S2"].set_index("session_date")
    close, volume = one["close"].to_numpy(), one["volume"].to_numpy()
    ret = close[1:] / close[:-1] - 1
    log_ret = np.log(close[1:] / close[:-1])
    got = raw.loc[(last, "S2")]
    assert got["ret_5d"] == pytest.approx(close[-1] / close[-6] - 1)
    assert got["ret_21d"] == pytest.approx(close[-1] / close[-22] - 1)
    assert got["mom_63d_skip5"] == pytest.approx(close[-6] / close[-64] - 1)
    assert got["vol_21d"] == pytest.approx(np.std(log_ret[-21:], ddof=1))
    assert got["vol_63d"] == pytest.approx(np.std(log_ret[-63:], ddof=1))
    assert got["max_ret_21d"] == pytest.approx(ret[-21:].max())
    assert got["log_dollar_volume_21d"] == pytest.approx(np.log(np.mean((close * volume)[-21:])))
    amihud = np.mean(np.abs(ret[-21:]) / (close * volume)[-21:]) * 1e6
    assert got["amihud_21d"] == pytest.approx(amihud)
    assert got["mom_126d_skip5"] == pytest.approx(close[-6] / close[-127] - 1)
    assert got["dist_high_126d"] == pytest.approx(close[-1] / close[-126:].max() - 1)
    assert got["skew_63d"] == pytest.approx(pd.Series(ret[-63:]).skew())
    assert got["hl_spread_21d"] == pytest.approx(
        np.mean(((one["high"] - one["low"]) / one["close"]).to_numpy()[-21:]))
    assert got["rel_volume_5_63d"] == pytest.approx(volume[-5:].mean() / volume[-63:].mean())
    # Beta and idiosyncratic volatility against the equal-weighted market, by regression.
    market = (bars.pivot(index="session_date", columns="symbol", values="close")
              .pct_change().mean(axis=1).to_numpy()[-63:])
    slope, intercept = np.polyfit(market, ret[-63:], 1)
    assert got["beta_63d"] == pytest.approx(slope)
    residual = ret[-63:] - (intercept + slope * market)
    assert got["idio_vol_63d"] == pytest.approx(np.std(residual, ddof=1))


def test_rows_start_once_a_symbol_has_its_full_history() -> None:
    raw = characteristics.raw_characteristics(_panel(n_sessions=135))
    first = raw.index.get_level_values("session_date").min()
    assert first == SESSIONS[characteristics.MIN_HISTORY - 1]
    assert raw.notna().all().all()


def test_ranks_span_minus_half_to_half_with_ties_and_missing() -> None:
    raw = pd.DataFrame(
        {"x": [3.0, 1.0, 2.0, 2.0, np.nan]},
        index=pd.MultiIndex.from_product([[date(2010, 1, 4)], list("abcde")],
                                         names=["session_date", "symbol"]))
    ranked = characteristics.rank_cross_section(raw)["x"].tolist()
    # ranks among the 4 present: a=4, b=1, c=d=2.5 -> (r-1)/3 - 0.5; missing -> 0.
    assert ranked == pytest.approx([0.5, -0.5, 0.0, 0.0, 0.0])


@settings(max_examples=8, deadline=None)
@given(cut=st.integers(min_value=127, max_value=149))
def test_point_in_time_truncation_changes_nothing_before_the_cut(cut: int) -> None:
    bars = _panel(n_sessions=150, seed=3)
    full = characteristics.compute(bars)
    cutoff = SESSIONS[cut]
    truncated = characteristics.compute(bars[bars.session_date <= cutoff])
    before = full[full.index.get_level_values("session_date") <= cutoff]
    pd.testing.assert_frame_equal(truncated, before)


def test_feature_set_key_changes_with_its_definition() -> None:
    changed = type(FEATURE_SET)(FEATURE_SET.name, FEATURE_SET.version,
                                {**FEATURE_SET.definition, "min_history": 128})
    assert changed.key != FEATURE_SET.key
    assert FEATURE_SET.key.startswith(FEATURE_SET.version + ".")


# --- The sentiment feature set (pipelines/features/sentiment.py) obeys the same rule. ---


def _news(n: int, seed: int) -> pd.DataFrame:
    """Random scored stories around the sessions of January-April 2024 (DST starts 10 March)."""
    rng = np.random.default_rng(seed)
    first = pd.Timestamp("2024-01-01", tz="UTC")
    return pd.DataFrame(
        {
            "published_at": first + pd.to_timedelta(rng.integers(0, 120 * 86400, n), unit="s"),
            "symbol": rng.choice(["AAPL", "MSFT", "IBM"], n),
            "score_vader": rng.uniform(-1, 1, n),
            "score_lm": np.where(rng.random(n) < 0.1, np.nan, rng.uniform(-1, 1, n)),
        }
    )


@settings(max_examples=4, deadline=None)
@given(cut=st.integers(min_value=40, max_value=50))  # 11 March 2024 (DST) is session 47
def test_sentiment_truncated_at_a_cutoff_changes_nothing_up_to_it(cut: int) -> None:
    from pipelines import calendar
    from pipelines.features import sentiment

    news = _news(3000, seed=cut)
    days = calendar.sessions(date(2024, 1, 2), date(2024, 4, 30))
    session = days[cut]
    full = sentiment.compute(news, days[cut - 3 : cut + 3])
    known = news[news.published_at < sentiment.cutoff(session)]
    truncated = sentiment.compute(known, days[cut - 3 : cut + 1])
    before = full[full.index.get_level_values("session_date") <= session]
    assert len(before) > 0
    pd.testing.assert_frame_equal(truncated, before)


def test_an_item_one_second_after_the_cutoff_waits_for_the_next_session() -> None:
    from pipelines.features import sentiment

    winter, summer = date(2024, 3, 8), date(2024, 3, 11)  # DST starts 10 March 2024
    assert sentiment.cutoff(winter) == datetime(2024, 3, 8, 12, 30, tzinfo=UTC)
    assert sentiment.cutoff(summer) == datetime(2024, 3, 11, 11, 30, tzinfo=UTC)
    at = pd.Timestamp(sentiment.cutoff(summer))
    news = pd.DataFrame(
        {
            "published_at": [at - pd.Timedelta(seconds=1), at + pd.Timedelta(seconds=1)],
            "symbol": ["AAPL", "MSFT"],
            "score_vader": [0.5, -0.5],
            "score_lm": [1.0, -1.0],
        }
    )
    out = sentiment.compute(news, [summer, date(2024, 3, 12)])
    assert out.loc[(summer, "AAPL"), "news_count"] == 1
    assert out.loc[(summer, "AAPL"), "sent_lm_mean"] == 1.0
    assert (summer, "MSFT") not in out.index  # one second late: not in this session's features
    assert out.loc[(date(2024, 3, 12), "MSFT"), "news_count"] == 1
    assert out.loc[(date(2024, 3, 12), "AAPL"), "news_count"] == 0  # older: decay only
    assert out.loc[(date(2024, 3, 12), "AAPL"), "sent_lm_decay"] == 1.0


def test_sentiment_decay_matches_a_hand_computation() -> None:
    from pipelines.features import sentiment

    session = date(2024, 3, 12)
    end = pd.Timestamp(sentiment.cutoff(session))
    news = pd.DataFrame(
        {
            "published_at": [end - pd.Timedelta(hours=1), end - pd.Timedelta(hours=25)],
            "symbol": ["IBM", "IBM"],
            "score_vader": [1.0, -1.0],
            "score_lm": [0.0, 1.0],
        }
    )
    row = sentiment.compute(news, [session]).loc[(session, "IBM")]
    w1, w2 = 0.5 ** (1 / 24), 0.5 ** (25 / 24)
    assert row["sent_vader_decay"] == pytest.approx((w1 - w2) / (w1 + w2))
    assert row["sent_lm_decay"] == pytest.approx(w2 / (w1 + w2))
    assert row["news_count"] == 1  # the 25-hour-old story came before the previous cutoff
    assert row["sent_vader_mean"] == 1.0
