from __future__ import annotations

import math

import pandas as pd
import pytest

from pipelines.validation import validate_bars


def _bars(n: int = 6) -> pd.DataFrame:
    """n good bars of one symbol on consecutive 2010 sessions (volume differs: none is stale)."""
    sessions = pd.bdate_range("2010-03-01", periods=n)
    return pd.DataFrame({
        "symbol": "AAA",
        "ts": [pd.Timestamp(d.date().isoformat() + " 21:00", tz="UTC") for d in sessions],
        "session_date": [d.date() for d in sessions],
        "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5,
        "volume": [1000.0 + i for i in range(n)],
    })


@pytest.mark.parametrize(("column", "value", "rule", "reason"), [
    ("open", math.nan, "open_not_null", "open is missing"),
    ("close", -1.0, "close_positive", "close -1.0 is not a price"),
    ("low", 0.0, "low_positive", "low 0.0 is not a price"),
    ("high", math.inf, "high_positive", "high inf is not a price"),
    ("high", 8.0, "high_ge_low", "high 8.0 < low 9.0"),
    ("high", 10.2, "high_ge_close", "high 10.2 < close 10.5"),
    ("low", 10.2, "open_ge_low", "open 10.0 < low 10.2"),
    ("volume", -5.0, "volume_non_negative", "volume -5.0"),
    ("ts", pd.NaT, "ts_not_null", "ts is missing"),
])
def test_each_rule_rejects_only_the_bad_row(column, value, rule, reason) -> None:
    frame = _bars()
    frame[column] = frame[column].astype(object) if column == "ts" else frame[column]
    frame.loc[2, column] = value
    result = validate_bars(frame)
    assert len(result.rejected) == 1 and len(result.valid) == 5
    bad = result.rejected.iloc[0]
    assert bad["session_date"] == frame.loc[2, "session_date"]
    assert bad["expectation"] == rule
    assert reason in bad["reason"]


def test_an_exact_copy_is_loaded_once() -> None:
    frame = pd.concat([_bars(), _bars().iloc[[3]]], ignore_index=True)
    result = validate_bars(frame)
    assert list(result.rejected.index) == [6]
    assert set(result.rejected["expectation"]) == {"exact_copy"}
    pd.testing.assert_frame_equal(result.valid, _bars())


def test_conflicting_bars_for_one_key_are_all_held_back() -> None:
    other = _bars().iloc[[3]].assign(close=10.4)
    frame = pd.concat([_bars(), other], ignore_index=True)
    result = validate_bars(frame)
    assert sorted(result.rejected.index) == [3, 6]
    assert set(result.rejected["expectation"]) == {"unique_symbol_ts"}
    assert "every version is held back" in result.rejected["reason"].iloc[0]
    assert len(result.valid) == 5


def test_first_failed_rule_names_the_row_and_nothing_is_lost() -> None:
    frame = _bars()
    frame.loc[1, ["open", "high"]] = [math.nan, 8.0]
    frame.loc[4, "volume"] = -1.0
    result = validate_bars(frame)
    assert len(result.valid) + len(result.rejected) == len(frame)
    assert dict(zip(result.rejected.index, result.rejected["expectation"], strict=True)) == {
        1: "open_not_null", 4: "volume_non_negative"}
    assert result.failure_fraction == pytest.approx(2 / 6)


def test_clean_frame_passes_untouched() -> None:
    frame = _bars()
    result = validate_bars(frame)
    assert result.rejected.empty
    pd.testing.assert_frame_equal(result.valid, frame)


def test_thresholds_come_from_the_settings(monkeypatch) -> None:
    from pipelines.config import get_settings
    from pipelines.validation import Limits

    monkeypatch.setenv("STALE_BAR_SESSIONS", "4")
    monkeypatch.setenv("MAX_CLOSE_JUMP", "0.25")
    get_settings.cache_clear()
    try:
        assert Limits.from_settings() == Limits(stale_sessions=4, max_close_jump=0.25)
        frame = _bars()
        frame.loc[3:, ["open", "high", "low", "close"]] *= 1.3  # +30%: a jump at 25%, not 50%
        result = validate_bars(frame)
        assert list(result.rejected["expectation"]) == ["no_unexplained_jump"]
        assert result.summary["limits"] == {"stale_sessions": 4, "max_close_jump": 0.25}
    finally:
        get_settings.cache_clear()
