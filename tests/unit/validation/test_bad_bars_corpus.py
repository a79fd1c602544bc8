"""The data-defect part of the bad-input corpus: real sample bars, each corrupted one way.

Each case corrupts the real bars of four symbols over February-March 2010 (168 rows, all good
as shipped) and states which rows must be quarantined, under which rule and with what words.
Every case also checks that every *other* row passes unchanged: the valid set is exactly the
uncorrupted rows. (Transport defects — HTTP errors, truncated JSON — live with the sources.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from pipelines.errors import ValidationGateError
from pipelines.sources.sample import SampleSource
from pipelines.validation import BarSchemaError, Limits, validate_bars

START, END = date(2010, 2, 1), date(2010, 3, 31)
SYMBOLS = ["AAPL", "IBM", "MSFT", "XOM"]
LIMITS = Limits(stale_sessions=3, max_close_jump=0.5)


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    frame = SampleSource().fetch_daily_bars(START, END, SYMBOLS)
    assert len(frame) == 168 and validate_bars(frame, limits=LIMITS).rejected.empty
    return frame


def _at(frame: pd.DataFrame, symbol: str, day: str) -> int:
    hit = frame.index[
        (frame["symbol"] == symbol) & (frame["session_date"] == date.fromisoformat(day))
    ]
    assert len(hit) == 1
    return int(hit[0])


Corruption = Callable[[pd.DataFrame], tuple[pd.DataFrame, list[int]]]


@dataclass(frozen=True)
class Case:
    corrupt: Corruption  # copy of the sample -> (corrupted frame, indexes that must be rejected)
    rule: str
    reason: str  # words the reason must contain
    corporate_actions: pd.DataFrame | None = None


def _set(ticker: str, day: str, **values: object) -> Corruption:
    """Overwrite some columns of one bar (as object where the value's type differs)."""

    def corrupt(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[int]]:
        i = _at(frame, ticker, day)
        for column, value in values.items():
            if callable(value):
                value = value(frame.loc[i])
            column_is_float = frame[column].dtype == "float64"
            if not (column_is_float and isinstance(value, float)) and column != "session_date":
                frame[column] = frame[column].astype("object")
            frame.loc[i, column] = value
        return frame, [i]

    return corrupt


def _duplicate(symbol: str, day: str, **changes: object) -> Corruption:
    """Append a copy of one bar (changed: a conflicting version of it)."""

    def corrupt(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[int]]:
        i = _at(frame, symbol, day)
        extra = frame.loc[[i]].assign(**changes)
        out = pd.concat([frame, extra], ignore_index=True)
        return out, ([i, len(frame)] if changes else [len(frame)])

    return corrupt


def _stale(symbol: str, day: str, repeats: int) -> Corruption:
    """The bar of ``day`` repeated identically on the next ``repeats`` sessions."""

    def corrupt(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[int]]:
        i = _at(frame, symbol, day)
        cols = ["open", "high", "low", "close", "volume"]
        rows = list(range(i + 1, i + 1 + repeats))
        frame.loc[rows, cols] = frame.loc[[i] * repeats, cols].to_numpy()
        return frame, rows

    return corrupt


def _scale(symbol: str, day: str, factor: float, onward: bool) -> Corruption:
    """Prices of one bar (or of every bar from ``day`` on) times ``factor``."""

    def corrupt(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[int]]:
        i = _at(frame, symbol, day)
        rows = frame.index[(frame["symbol"] == symbol) & (frame.index >= i)] if onward else [i]
        frame.loc[rows, ["open", "high", "low", "close"]] *= factor
        return frame, [i]

    return corrupt


def _ts(symbol: str, day: str, make: Callable[[pd.Series], object]) -> Corruption:
    return _set(symbol, day, ts=make)


def _moved_to(symbol: str, day: str, new_day: str) -> Corruption:
    """A bar re-dated to ``new_day`` (both session_date and ts at 21:00 UTC that day)."""
    ts = pd.Timestamp(f"{new_day} 21:00", tz="UTC")
    return _set(symbol, day, session_date=date.fromisoformat(new_day), ts=ts)


def _drop_one(frame: pd.DataFrame, i: int) -> pd.DataFrame:
    return frame.drop(index=i)


SPLIT = pd.DataFrame(
    {"symbol": ["MSFT"], "ex_date": [date(2010, 3, 10)], "kind": ["split"], "value": [0.01]}
)

CASES: dict[str, Case] = {
    "nan_price": Case(
        _set("AAPL", "2010-02-10", close=math.nan), "close_not_null", "close is missing"
    ),
    "inf_price": Case(
        _set("IBM", "2010-02-10", high=math.inf), "high_positive", "high inf is not a price"
    ),
    "minus_inf_price": Case(_set("IBM", "2010-03-02", low=-math.inf), "low_positive", "low -inf"),
    "negative_price": Case(
        _set("XOM", "2010-02-10", open=-65.0), "open_positive", "open -65.0 is not a price"
    ),
    "zero_price": Case(_set("MSFT", "2010-02-11", close=0.0), "close_positive", "close 0.0"),
    "absurd_price": Case(_set("MSFT", "2010-02-12", high=2e9), "high_positive", "absurd"),
    "high_below_low": Case(
        _set("AAPL", "2010-03-03", high=lambda r: r["low"] - 1.0), "high_ge_low", "< low"
    ),
    "high_below_close": Case(
        _set("AAPL", "2010-03-04", open=lambda r: r["low"], high=lambda r: r["close"] - 0.01),
        "high_ge_close",
        "< close",
    ),
    "low_above_open": Case(
        _set("XOM", "2010-03-04", close=lambda r: r["high"], low=lambda r: r["open"] + 0.01),
        "open_ge_low",
        "open",
    ),
    "negative_volume": Case(
        _set("IBM", "2010-03-05", volume=-100.0), "volume_non_negative", "volume -100.0"
    ),
    "nan_volume": Case(
        _set("IBM", "2010-03-08", volume=math.nan), "volume_not_null", "volume is missing"
    ),
    "inf_volume": Case(
        _set("IBM", "2010-03-09", volume=math.inf), "volume_non_negative", "not finite"
    ),
    "duplicated_bar": Case(
        _duplicate("AAPL", "2010-02-17"), "exact_copy", "the first copy is loaded"
    ),
    "conflicting_duplicate": Case(
        _duplicate("AAPL", "2010-02-18", close=lambda d: d["close"] + 0.01),
        "unique_symbol_ts",
        "every version is held back",
    ),
    "weekend_session": Case(
        _moved_to("XOM", "2010-02-12", "2010-02-13"), "nyse_session", "NYSE session (a weekend)"
    ),
    "holiday_session": Case(
        _moved_to("XOM", "2010-02-16", "2010-02-15"), "nyse_session", "holiday"
    ),
    "ts_at_3am": Case(
        _ts("MSFT", "2010-02-16", lambda r: pd.Timestamp("2010-02-16 03:00", tz="UTC")),
        "ts_at_session_close",
        "is not the close of session 2010-02-16",
    ),
    "ts_not_at_close": Case(
        _ts("MSFT", "2010-02-17", lambda r: r["ts"] - pd.Timedelta(hours=3)),
        "ts_at_session_close",
        "is not the close",
    ),
    "session_date_disagrees_with_ts": Case(
        _set("MSFT", "2010-02-18", session_date=date(2010, 2, 17)),
        "ts_at_session_close",
        "but session_date says 2010-02-17",
    ),
    "naive_ts": Case(
        _ts("AAPL", "2010-02-22", lambda r: r["ts"].tz_localize(None)), "ts_in_utc", "naive"
    ),
    "wrong_time_zone": Case(
        _ts("AAPL", "2010-02-23", lambda r: r["ts"].tz_convert(ZoneInfo("America/New_York"))),
        "ts_in_utc",
        "America/New_York",
    ),
    "ts_as_text": Case(
        _ts("AAPL", "2010-02-24", lambda r: r["ts"].isoformat()), "types_ok", "not a timestamp"
    ),
    "missing_ts": Case(_ts("AAPL", "2010-02-25", lambda r: None), "ts_not_null", "ts is missing"),
    "jump_100x_unflagged": Case(
        _scale("IBM", "2010-03-10", 100.0, onward=False),
        "no_unexplained_jump",
        "no corporate action on record",
    ),
    "level_shift_without_split": Case(
        _scale("MSFT", "2010-03-10", 100.0, onward=True), "no_unexplained_jump", "moved +99"
    ),
    "stale_repeats": Case(_stale("XOM", "2010-03-15", repeats=3), "not_stale", "looks frozen"),
    "empty_symbol": Case(
        _set("AAPL", "2010-03-16", symbol=""), "symbol_well_formed", "symbol is empty"
    ),
    "missing_symbol": Case(_set("AAPL", "2010-03-17", symbol=None), "symbol_not_null", "no ticker"),
    "lower_case_symbol": Case(
        _set("IBM", "2010-03-16", symbol="ibm"), "symbol_well_formed", "not upper case"
    ),
    "whitespace_symbol": Case(
        _set("IBM", "2010-03-17", symbol=" IBM "), "symbol_well_formed", "whitespace"
    ),
    "sql_symbol": Case(
        _set("IBM", "2010-03-18", symbol="IBM'; DROP TABLE bars;--"),
        "symbol_well_formed",
        "SQL characters",
    ),
    "path_symbol": Case(
        _set("IBM", "2010-03-19", symbol="../../etc/passwd"),
        "symbol_well_formed",
        "path characters",
    ),
    "numeric_symbol": Case(_set("IBM", "2010-03-22", symbol=123), "types_ok", "not text"),
    "price_as_text": Case(
        _set("XOM", "2010-03-22", open="64.5"), "types_ok", "'64.5' is str, not a number"
    ),
    "volume_as_text": Case(
        _set("XOM", "2010-03-23", volume="n/a"), "types_ok", "is str, not a number"
    ),
    "session_date_as_text": Case(
        _set("XOM", "2010-03-24", session_date="2010-03-24"), "types_ok", "not a date"
    ),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_bad_rows_are_quarantined_and_every_good_row_passes(
    sample: pd.DataFrame, kind: str
) -> None:
    case = CASES[kind]
    frame, bad = case.corrupt(sample.copy())
    result = validate_bars(frame, case.corporate_actions, limits=LIMITS)
    assert sorted(result.rejected.index) == sorted(bad), result.rejected[["expectation", "reason"]]
    assert set(result.rejected["expectation"]) == {case.rule}
    assert all(case.reason in reason for reason in result.rejected["reason"])
    expected = sample.drop(index=[i for i in bad if i in sample.index]).reset_index(drop=True)
    if kind == "level_shift_without_split":  # only the shift's first bar is held back
        expected = frame.drop(index=bad).reset_index(drop=True)
    pd.testing.assert_frame_equal(result.valid, expected)
    assert result.summary["quarantined_by"] == {case.rule: len(bad)}


def test_a_100x_jump_on_a_split_ex_date_passes(sample: pd.DataFrame) -> None:
    frame, _ = _scale("MSFT", "2010-03-10", 100.0, onward=True)(sample.copy())
    result = validate_bars(frame, SPLIT, limits=LIMITS)
    assert result.rejected.empty
    pd.testing.assert_frame_equal(result.valid, frame)
    flagged = validate_bars(frame, None, limits=LIMITS)  # the same data without the split
    assert list(flagged.rejected["expectation"]) == ["no_unexplained_jump"]


def test_a_dividend_does_not_explain_a_jump(sample: pd.DataFrame) -> None:
    frame, bad = _scale("MSFT", "2010-03-10", 100.0, onward=False)(sample.copy())
    dividend = SPLIT.assign(kind="dividend", value=0.13)
    assert list(validate_bars(frame, dividend, limits=LIMITS).rejected.index) == bad


def test_a_missing_column_refuses_the_batch_naming_it(sample: pd.DataFrame) -> None:
    with pytest.raises(BarSchemaError, match=r"lacks column\(s\) volume .*fix the source"):
        validate_bars(sample.drop(columns="volume"), limits=LIMITS)


def test_an_empty_response_refuses_the_batch(sample: pd.DataFrame) -> None:
    with pytest.raises(BarSchemaError, match="no columns at all"):
        validate_bars(pd.DataFrame(), limits=LIMITS)
    with pytest.raises(ValidationGateError, match="no bars for 42 NYSE sessions"):
        validate_bars(sample.iloc[0:0], start=START, end=END, limits=LIMITS)
    nothing_due = validate_bars(sample.iloc[0:0], start=date(2010, 2, 13), end=date(2010, 2, 15))
    assert nothing_due.valid.empty and nothing_due.summary["rows"] == 0  # a weekend + holiday


def test_a_whole_column_of_text_quarantines_every_row(sample: pd.DataFrame) -> None:
    frame = sample.assign(close=sample["close"].astype(str))
    result = validate_bars(frame, limits=LIMITS)
    assert result.valid.empty and result.failure_fraction == 1.0
    assert set(result.rejected["expectation"]) == {"types_ok"}


def test_missing_sessions_are_reported_not_quarantined(sample: pd.DataFrame) -> None:
    frame = sample.drop(index=[_at(sample, "IBM", "2010-03-01"), _at(sample, "IBM", "2010-03-02")])
    result = validate_bars(frame, start=START, end=END, limits=LIMITS)
    assert result.rejected.empty
    assert result.summary["missing_sessions"] == {
        "total": 2,
        "by_symbol": {"IBM": {"count": 2, "first": ["2010-03-01", "2010-03-02"]}},
    }


def test_the_corpus_has_at_least_22_kinds() -> None:
    assert len(CASES) + 3 >= 22  # plus the split, missing column and empty cases above


def test_real_corporate_actions_in_the_sample_explain_its_jumps() -> None:
    """The sample's jumps that look like corporate actions are explained when recorded as such.

    The action rows are illustrative (the sample ships none): GIS halves (2-for-1 split), STR
    falls by two thirds (spin-off), WY falls by ~$26 (special dividend); MFE's +57% has no
    corporate action and stays quarantined.
    """
    frame = SampleSource().fetch_daily_bars(date(2010, 6, 1), date(2010, 8, 20), None)
    frame = frame[frame["symbol"].isin(["GIS", "STR", "WY", "MFE"])].reset_index(drop=True)
    actions = pd.DataFrame(
        {
            "symbol": ["GIS", "STR", "WY", "WY"],
            "ex_date": [date(2010, 6, 9), date(2010, 7, 1), date(2010, 7, 20), date(2010, 7, 20)],
            "kind": ["split", "spinoff", "dividend", "dividend"],
            "value": [2.0, 1.0, 0.05, 26.41],  # WY: USD/share, a special dividend the drop's size
        }
    )
    without = validate_bars(frame, limits=LIMITS).rejected
    assert sorted(without["symbol"]) == ["GIS", "MFE", "STR", "WY"]
    held = validate_bars(frame, actions, limits=LIMITS).rejected
    assert list(held["symbol"]) == ["MFE"]  # +57% on a takeover bid: a person must look
    small = actions.assign(value=[2.0, 1.0, 0.05, 0.1])  # dividends far too small for WY's drop
    assert sorted(validate_bars(frame, small, limits=LIMITS).rejected["symbol"]) == ["MFE", "WY"]
