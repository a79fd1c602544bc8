from __future__ import annotations

from datetime import date

import pytest

from pipelines import calendar
from pipelines.backtest.splits import WalkForward, folds

SESSIONS = calendar.sessions(date(2010, 1, 1), date(2019, 12, 31))


def test_twelve_windows_with_thirty_percent_out_of_sample() -> None:
    result = folds(SESSIONS, WalkForward())
    assert len(result) == 12
    for fold in result:
        assert fold.test_sessions / (fold.train_sessions + fold.test_sessions + 1) == pytest.approx(
            0.3, abs=0.01
        )
    # Test periods are consecutive, disjoint and run to the last session.
    for a, b in zip(result, result[1:], strict=False):
        assert calendar.next_session(a.test_end) == b.test_start
    assert result[-1].test_end == SESSIONS[-1]


def test_purge_and_embargo_leave_a_gap_before_each_test_period() -> None:
    for purge, embargo in ((1, 0), (1, 5), (3, 2)):
        for fold in folds(SESSIONS, WalkForward(purge=purge, embargo=embargo)):
            gap = SESSIONS.index(fold.test_start) - SESSIONS.index(fold.train_end) - 1
            assert gap == purge + embargo


def test_rolling_keeps_its_length_expanding_keeps_its_start() -> None:
    rolling = folds(SESSIONS, WalkForward(scheme="rolling"))
    expanding = folds(SESSIONS, WalkForward(scheme="expanding"))
    assert len({f.train_sessions for f in rolling}) == 1
    assert {f.train_start for f in expanding} == {SESSIONS[0]}
    assert expanding[-1].train_sessions > expanding[0].train_sessions


def test_monthly_retraining_cuts_each_test_period() -> None:
    monthly = folds(SESSIONS, WalkForward(retrain_every=21))
    assert len(monthly) > 12 * 8
    assert all(f.test_sessions <= 21 for f in monthly)
    assert sum(f.test_sessions for f in monthly) == sum(
        f.test_sessions for f in folds(SESSIONS, WalkForward())
    )
