"""The bar validation suite (GX Core 1.x), built in code and versioned.

Each expectation carries a short ``reason`` template filled from the failing row's values, so
a quarantined row says what is wrong in words a user can act on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import great_expectations.expectations as gxe
import pandas as pd

SUITE_NAME = "bars"
SUITE_VERSION = "1"
MAX_PRICE = 1e7  # USD; anything above is a unit or parsing error, not a stock price


@dataclass(frozen=True)
class Rule:
    """One expectation and how to say, for one row, why it failed."""

    name: str
    expectation: gxe.Expectation
    reason: Callable[[pd.Series], str]


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
        lambda row: f"{column} {row[column]} is not a price in (0, {MAX_PRICE:g}] USD",
    )


def _at_least(high: str, low: str) -> Rule:
    return Rule(
        f"{high}_ge_{low}",
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=high, column_B=low, or_equal=True),
        lambda row: f"{high} {row[high]} < {low} {row[low]}",
    )


def rules() -> list[Rule]:
    """The suite's rules, in the order their reasons are reported."""
    return [
        _not_null("symbol", "no ticker"),
        _not_null("ts", "the date is not an NYSE session"),
        *(_not_null(c, "no value") for c in ("open", "high", "low", "close", "volume")),
        *(_positive_price(c) for c in ("open", "high", "low", "close")),
        Rule(
            "volume_non_negative",
            gxe.ExpectColumnValuesToBeBetween(column="volume", min_value=0, max_value=1e13),
            lambda row: f"volume {row['volume']} is negative or not finite",
        ),
        _at_least("high", "low"),
        _at_least("high", "open"),
        _at_least("high", "close"),
        _at_least("open", "low"),
        _at_least("close", "low"),
        Rule(
            "unique_symbol_ts",
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["symbol", "ts"]),
            lambda row: (
                f"duplicate bar for {row['symbol']} at {row['ts']}: which one is right "
                "is unknown, so every copy is held back"
            ),
        ),
    ]
