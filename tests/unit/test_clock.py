from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from pipelines.clock import FixedClock, SimClock, premarket


def test_premarket_is_four_in_new_york_in_summer_and_winter() -> None:
    assert premarket(date(2010, 7, 6)) == datetime(2010, 7, 6, 8, 0, tzinfo=UTC)
    assert premarket(date(2010, 1, 5)) == datetime(2010, 1, 5, 9, 0, tzinfo=UTC)


def test_a_fixed_clock_stays_and_names_its_session() -> None:
    clock = FixedClock.premarket(date(2010, 7, 6))
    assert clock.now() == clock.now() == premarket(date(2010, 7, 6))
    assert clock.session_date() == date(2010, 7, 6)
    with pytest.raises(ValueError, match="timezone-aware"):
        FixedClock(datetime(2010, 7, 6, 8))


def test_the_simulated_clock_moves_forward_only() -> None:
    clock = SimClock(premarket(date(2010, 7, 6)))
    clock.advance_to(premarket(date(2010, 7, 7)))
    assert clock.session_date() == date(2010, 7, 7)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance_to(premarket(date(2010, 7, 6)))
    assert clock.session_date() == date(2010, 7, 7)
