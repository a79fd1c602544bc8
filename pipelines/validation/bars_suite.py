"""The bar validation suite (GX Core 1.x), built in code and versioned.

The suite ``bars`` version ``SUITE_VERSION`` runs on the *check frame* that
:mod:`pipelines.validation.prepare` builds from a source's canonical bar frame: the bar columns
coerced to their canonical dtypes (a value of the wrong type becomes missing there and is named
in ``type_error``), plus computed columns for the rules GX cannot express row by row.

Which rule is checked how:

=====================  ======================================================================
rule                   check
=====================  ======================================================================
types_ok               GX ``ExpectColumnValuesToBeNull`` on computed ``type_error`` (project
                       code names the value of the wrong type: text for a price, ...)
ts_in_utc              GX ``ExpectColumnValuesToBeInSet`` on computed ``ts_zone`` (``UTC``;
                       ``naive`` or another zone name fails)
<col>_not_null         GX ``ExpectColumnValuesToNotBeNull`` (symbol, ts, session_date, OHLCV)
symbol_well_formed     GX ``ExpectColumnValuesToMatchRegex`` (upper-case ticker, no SQL or path
                       characters, no whitespace)
ts_at_session_close    GX ``ExpectColumnPairValuesToBeEqual`` of ``ts`` and computed
                       ``session_close`` (the NYSE close of ``session_date`` from
                       :mod:`pipelines.calendar`; missing when the date is no session)
<price>_positive       GX ``ExpectColumnValuesToBeBetween`` (0, MAX_PRICE]: zero, negative,
                       NaN and infinite prices fail
volume_non_negative    GX ``ExpectColumnValuesToBeBetween`` [0, MAX_VOLUME]: negative or
                       infinite volume fails
high_ge_low, ...       GX ``ExpectColumnPairValuesAToBeGreaterThanB`` (``or_equal``): together
                       ``low <= min(open, close)`` and ``high >= max(open, close)``
exact_copy             GX ``ExpectColumnValuesToBeBetween`` on computed ``copy_index`` (0 for
                       the first of identical rows): extra identical copies are held back,
                       the first is loaded
unique_symbol_ts       GX ``ExpectCompoundColumnsToBeUnique`` on (symbol, ts) among first
                       copies (``row_condition``): bars that *disagree* for one key are all
                       held back, since which one is right is unknown
not_stale              GX ``ExpectColumnValuesToBeBetween`` on computed ``stale_repeat``:
                       an identical OHLCV bar on ``stale_sessions`` or more consecutive
                       sessions of a symbol quarantines every repeat after the first
no_unexplained_jump    GX ``ExpectColumnValuesToBeBetween`` on computed ``close_jump`` (close
                       over the symbol's previous close, minus one; left empty where a
                       corporate action explains it and on the bar that returns from a
                       one-bar spike; see docs/validation.md)
=====================  ======================================================================

Missing sessions are not a row rule (there is no row): the gate reports them in its summary.
Each rule carries a ``reason`` built from the failing row's *raw* values, so a quarantined row
says what is wrong in words a user can act on. Changing a rule means bumping ``SUITE_VERSION``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import great_expectations.expectations as gxe
import pandas as pd

Row = Mapping[str, Any]  # one rejected row: raw values, plus computed ones prefixed "_"
SUITE_NAME = "bars"
SUITE_VERSION = "3"
MAX_PRICE = 1e7  # USD; anything above is a unit or parsing error, not a stock price
MAX_VOLUME = 1e13  # shares; finite and above any real day's volume
# An upper-case ticker: a letter, then letters/digits, with single '.' or '-' class separators
# (BRK.B, BF-B). Nothing else: no whitespace, quotes, ';', '/', '\\', '%', '..'.
SYMBOL_REGEX = r"^[A-Z][A-Z0-9]{0,9}(?:[.\-][A-Z0-9]{1,4})?$"
SQL_CHARACTERS = frozenset("'\";%*=()`")
PATH_CHARACTERS = frozenset("/\\:~")


@dataclass(frozen=True)
class Limits:
    """Thresholds of the rules that are settings (``STALE_BAR_SESSIONS``, ``MAX_CLOSE_JUMP``)."""

    stale_sessions: int = 3  # identical OHLCV bars on this many consecutive sessions = stale
    max_close_jump: float = 0.5  # |close / previous close - 1| above this needs a split

    @classmethod
    def from_settings(cls) -> Limits:
        from pipelines.config import get_settings

        settings = get_settings()
        return cls(settings.stale_bar_sessions, settings.max_close_jump)


@dataclass(frozen=True)
class Rule:
    """One expectation and how to say, for one (raw) row, why it failed."""

    name: str
    expectation: gxe.Expectation
    reason: Callable[[Row], str]


def suite_id() -> str:
    """The suite's name and version as recorded in ``validation_runs.suite``: ``bars_v3``."""
    return f"{SUITE_NAME}_v{SUITE_VERSION}"


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def symbol_problem(value: object) -> str:
    """Why ``value`` is not a well-formed ticker, in words."""
    if not isinstance(value, str):
        return f"symbol {_show(value)} is not text"
    if value == "" or value.isspace():
        return "symbol is empty"
    if value != value.strip():
        return f"symbol {value!r} has leading or trailing whitespace"
    if any(c in SQL_CHARACTERS for c in value) or "--" in value:
        return f"symbol {value!r} contains SQL characters (quotes, ';', '%', '--' ...)"
    if any(c in PATH_CHARACTERS for c in value) or ".." in value:
        return f"symbol {value!r} contains path characters ('/', '\\\\', '..', ...)"
    if value != value.upper():
        return f"symbol {value!r} is not upper case (the warehouse keys on {value.upper()!r})"
    if any(c.isspace() for c in value):
        return f"symbol {value!r} contains whitespace"
    return f"symbol {value!r} is not a ticker (expected e.g. AAPL, BRK.B, BF-B)"


def _not_null(column: str, what: str) -> Rule:
    return Rule(
        f"{column}_not_null",
        gxe.ExpectColumnValuesToNotBeNull(column=column),
        lambda row: f"{column} is missing ({what})",
    )


def _positive_price(column: str) -> Rule:
    return Rule(
        f"{column}_positive",
        gxe.ExpectColumnValuesToBeBetween(
            column=column, min_value=0, strict_min=True, max_value=MAX_PRICE
        ),
        lambda row: (
            f"{column} {row[column]} is not a price in (0, {MAX_PRICE:g}] USD "
            "(zero, negative, infinite or absurd)"
        ),
    )


def _at_least(high: str, low: str) -> Rule:
    return Rule(
        f"{high}_ge_{low}",
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=high, column_B=low, or_equal=True),
        lambda row: f"{high} {row[high]} < {low} {row[low]}: the bar is inconsistent",
    )


def _ts_reason(row: Row) -> str:
    from pipelines import calendar

    day, ts = row["_session_date"], pd.Timestamp(row["ts"])  # the date as checked
    if not calendar.is_session(day):
        kind = "a weekend" if day.weekday() >= 5 else "an exchange holiday"
        return f"session_date {day} is not an NYSE session ({kind}); ts {ts}"
    close = calendar.session_close(day)
    ts_day = calendar.exchange_date(ts)
    if ts_day != day and calendar.is_session(ts_day) and ts == calendar.session_close(ts_day):
        return f"ts {ts} is the close of {ts_day}, but session_date says {day}"
    return f"ts {ts} is not the close of session {day} ({close}); a daily bar is stamped at it"


def _text_rule(name: str, column: str) -> Rule:
    """A rule whose check project code computed as a reason text (None = passes)."""
    return Rule(
        name, gxe.ExpectColumnValuesToBeNull(column=column), lambda row: str(row[f"_{column}"])
    )


def _stale_reason(row: Row) -> str:
    return (
        f"same OHLCV as the previous session(s) (close {row['close']}, volume {row['volume']}) "
        "repeated on consecutive sessions: the vendor's series looks frozen"
    )


def _jump_reason(row: Row) -> str:
    return (
        f"close {row['close']} moved {row['_close_jump']:+.0%} from the previous close and no "
        "corporate action on record explains it; if a split, spin-off or special dividend "
        "happened, record it in corporate_actions and rerun, else the vendor sent a bad price"
    )


def describe(name: str, limits: Limits) -> str:
    """What rule ``name`` demands, in words (shown in Data Docs next to the rule's name)."""
    fixed = {
        "types_ok": "every value has its canonical type (numbers, UTC timestamps, dates, text)",
        "vendor_time_ok": "the vendor's bar time is RFC 3339 text with a UTC offset",
        "nyse_session": "session_date is an NYSE session (not a weekend or holiday)",
        "in_window": (
            "the bar's session is in the requested [start, end] and the bar ended before the "
            "vendor's own clock"
        ),
        "bar_time": (
            "the vendor stamped the bar at its session's bar time (daily: 00:00 New York; "
            "minute: a whole minute within regular hours)"
        ),
        "vwap_in_range": "vwap, when sent, is within [low, high]",
        "trade_count_valid": "trade count, when sent, is a whole number >= 0",
        "zero_volume_no_move": "a bar with volume 0 has open = high = low = close",
        "ts_in_utc": "ts is time-zone aware and in UTC",
        "symbol_well_formed": "symbol is an upper-case ticker without SQL or path characters",
        "ts_at_session_close": "ts is the NYSE close of session_date (which is a session)",
        "volume_non_negative": f"volume is finite and in [0, {MAX_VOLUME:g}] shares",
        "exact_copy": "no row is an exact copy of an earlier one (the first copy is loaded)",
        "unique_symbol_ts": "one bar per (symbol, ts); disagreeing versions are all held back",
        "not_stale": (
            f"the same OHLCV bar does not repeat on {limits.stale_sessions} or more "
            "consecutive sessions (STALE_BAR_SESSIONS)"
        ),
        "no_unexplained_jump": (
            f"close within ±{limits.max_close_jump:.0%} of the previous close (MAX_CLOSE_JUMP) "
            "unless a split, spin-off or dividend on that ex-date explains it"
        ),
    }
    if name in fixed:
        return fixed[name]
    if name.endswith("_not_null"):
        return f"{name.removesuffix('_not_null')} is present"
    if name.endswith("_positive"):
        return f"{name.removesuffix('_positive')} is a price in (0, {MAX_PRICE:g}] USD"
    high, low = name.split("_ge_")
    return f"{high} >= {low}"


def _tagged(rule: Rule, limits: Limits) -> Rule:
    rule.expectation.meta = {"rule": rule.name}  # GX reorders results; this names them
    rule.expectation.description = f"[{rule.name}] {describe(rule.name, limits)}"
    return rule


def rules(limits: Limits | None = None) -> list[Rule]:
    """The suite's rules, in the order their reasons are reported (first failed rule wins)."""
    limits = limits or Limits()
    jump = limits.max_close_jump
    suite = [
        Rule(
            "types_ok",
            gxe.ExpectColumnValuesToBeNull(column="type_error"),
            lambda row: str(row["_type_error"]),
        ),
        _text_rule("vendor_time_ok", "vendor_time_error"),
        Rule(
            "ts_in_utc",
            gxe.ExpectColumnValuesToBeInSet(column="ts_zone", value_set=["UTC"]),
            lambda row: (
                f"ts {row['ts']} is {row['_ts_zone']}, not UTC: the source must convert "
                "times to UTC (a naive time is ambiguous)"
            ),
        ),
        _not_null("symbol", "no ticker"),
        _not_null("session_date", "no session date"),
        _text_rule("nyse_session", "session_error"),
        _text_rule("in_window", "window_error"),
        _text_rule("bar_time", "bar_time_error"),
        _not_null("ts", "no bar time"),
        *(_not_null(c, "no value") for c in ("open", "high", "low", "close", "volume")),
        Rule(
            "symbol_well_formed",
            gxe.ExpectColumnValuesToMatchRegex(column="symbol", regex=SYMBOL_REGEX),
            lambda row: symbol_problem(row["symbol"]),
        ),
        Rule(
            "ts_at_session_close",
            gxe.ExpectColumnPairValuesToBeEqual(column_A="ts", column_B="session_close"),
            _ts_reason,
        ),
        *(_positive_price(c) for c in ("open", "high", "low", "close")),
        Rule(
            "volume_non_negative",
            gxe.ExpectColumnValuesToBeBetween(column="volume", min_value=0, max_value=MAX_VOLUME),
            lambda row: f"volume {row['volume']} is negative or not finite",
        ),
        _at_least("high", "low"),
        _at_least("high", "open"),
        _at_least("high", "close"),
        _at_least("open", "low"),
        _at_least("close", "low"),
        _text_rule("vwap_in_range", "vwap_error"),
        _text_rule("trade_count_valid", "trade_count_error"),
        _text_rule("zero_volume_no_move", "zero_volume_error"),
        Rule(
            "exact_copy",
            gxe.ExpectColumnValuesToBeBetween(column="copy_index", max_value=0),
            lambda row: (
                f"exact copy of another row for {row['symbol']} at {row['ts']}: "
                "the first copy is loaded, this one is held back"
            ),
        ),
        Rule(
            "unique_symbol_ts",
            gxe.ExpectCompoundColumnsToBeUnique(
                column_list=["symbol", "ts"],
                row_condition="key_check==1 and copy_index==0",
                condition_parser="pandas",
            ),
            lambda row: (
                f"several different bars for {row['symbol']} at {row['ts']}: which one is "
                "right is unknown, so every version is held back"
            ),
        ),
        Rule(
            "not_stale",
            gxe.ExpectColumnValuesToBeBetween(column="stale_repeat", max_value=0),
            _stale_reason,
        ),
        Rule(
            "no_unexplained_jump",
            gxe.ExpectColumnValuesToBeBetween(column="close_jump", min_value=-jump, max_value=jump),
            _jump_reason,
        ),
    ]
    return [_tagged(rule, limits) for rule in suite]
