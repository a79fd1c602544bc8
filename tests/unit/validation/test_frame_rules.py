"""The suite's rules judged in pandas (the stream's path) fail exactly the rows GX fails.

Every case of the bad-bars corpus is turned into its check frame; for each rule, the rows
:func:`pipelines.validation.frame_rules.failing` returns must be the rows GX's run of the same
suite reports, and the first failed rule per row must be the one the gate quarantines under.
"""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.sources.sample import SampleSource
from pipelines.validation import validate_bars
from pipelines.validation.bars_suite import rules
from pipelines.validation.frame_rules import failing, first_failed
from pipelines.validation.gate import GX_COLUMNS, _run_suite
from pipelines.validation.prepare import check_frame
from tests.unit.validation.test_bad_bars_corpus import CASES, END, LIMITS, START, SYMBOLS


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return SampleSource().fetch_daily_bars(START, END, SYMBOLS)


@pytest.mark.parametrize("kind", list(CASES))
def test_pandas_and_gx_fail_the_same_rows(sample: pd.DataFrame, kind: str) -> None:
    case = CASES[kind]
    frame, _ = case.corrupt(sample.copy())
    frame = frame.reset_index(drop=True)
    check = check_frame(frame, case.corporate_actions, LIMITS)
    by_gx = _run_suite(check[list(GX_COLUMNS)], LIMITS, "test", None)
    for rule in rules(LIMITS):
        ours = sorted(int(i) for i in check.index[failing(check, rule).to_numpy()])
        assert ours == sorted(by_gx.get(rule.name, [])), rule.name
    gate = validate_bars(frame, case.corporate_actions, limits=LIMITS).rejected["expectation"]
    first = first_failed(check, rules(LIMITS))
    assert first.dropna().to_dict() == gate.to_dict()
