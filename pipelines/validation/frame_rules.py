"""The bar suite's rules evaluated on the check frame in pandas, without a GX run.

The same :func:`~pipelines.validation.bars_suite.rules` (their expectations' columns and
bounds, their order, their reasons) judged with vectorized pandas, for callers that cannot
pay a GX checkpoint per call (about 0.1 s to 1 s here): the stream processor validates a
micro-batch every few milliseconds. GX's semantics are kept: a column-map expectation skips
missing values (except the null checks themselves), a pair expectation skips rows where both
values are missing, and ``unique_symbol_ts`` applies its ``row_condition``. A test checks
that this and the GX suite fail the same rows (tests/unit/validation/test_frame_rules.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.errors import ValidationGateError
from pipelines.validation.bars_suite import Rule


def _between(values: pd.Series, config: dict) -> pd.Series:
    low, high = config.get("min_value"), config.get("max_value")
    ok = pd.Series(True, index=values.index)
    if low is not None:
        ok &= values > low if config.get("strict_min") else values >= low
    if high is not None:
        ok &= values < high if config.get("strict_max") else values <= high
    return values.notna() & ~ok.fillna(False).astype(bool)


def _pair(check: pd.DataFrame, config: dict, kind: str) -> pd.Series:
    a, b = check[config["column_A"]], check[config["column_B"]]
    if kind == "expect_column_pair_values_to_be_equal":
        ok = a.eq(b)
    elif config.get("or_equal"):
        ok = a.ge(b)
    else:
        ok = a.gt(b)
    both_missing = a.isna() & b.isna()
    return ~ok.fillna(False).astype(bool) & ~both_missing


def _unique(check: pd.DataFrame, config: dict) -> pd.Series:
    keys = list(config["column_list"])
    condition = config.get("row_condition")
    if isinstance(condition, dict):  # GX 1.x keeps a pandas condition as a pass-through filter
        condition = condition.get("pass_through_filter")
    rows = check.query(condition) if condition else check
    rows = rows.loc[~rows[keys].isna().all(axis=1)]
    duplicated = rows.duplicated(keys, keep=False)
    return duplicated.reindex(check.index, fill_value=False)


def failing(check: pd.DataFrame, rule: Rule) -> pd.Series:
    """Boolean: the rows of ``check`` that fail ``rule`` (same index)."""
    kind = rule.expectation.expectation_type
    config = rule.expectation.configuration.kwargs
    column = config.get("column")
    if kind == "expect_column_values_to_be_null":
        return check[column].notna()
    if kind == "expect_column_values_to_not_be_null":
        return check[column].isna()
    if kind == "expect_column_values_to_be_in_set":
        values = check[column]
        return values.notna() & ~values.isin(list(config["value_set"]))
    if kind == "expect_column_values_to_match_regex":
        values = check[column]
        matched = values.astype("string").str.match(config["regex"]).fillna(False).astype(bool)
        return values.notna() & ~matched
    if kind == "expect_column_values_to_be_between":
        return _between(check[column], config)
    if kind.startswith("expect_column_pair_values"):
        return _pair(check, config, kind)
    if kind == "expect_compound_columns_to_be_unique":
        return _unique(check, config)
    raise ValidationGateError(f"rule {rule.name}: no pandas evaluation for {kind}; add one here")


def first_failed(check: pd.DataFrame, rules: list[Rule]) -> pd.Series:
    """Per row, the name of the first rule (in suite order) it fails, or None."""
    names = np.array([rule.name for rule in rules] + [None], dtype=object)
    fails = np.column_stack(
        [failing(check, rule).to_numpy(dtype=bool) for rule in rules]
        + [np.ones(len(check), dtype=bool)]
    )
    return pd.Series(names[fails.argmax(axis=1)], index=check.index, dtype="object")
