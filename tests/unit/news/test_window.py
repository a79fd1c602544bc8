"""``mltrade news --start/--end``: dates are sessions, datetimes need a zone."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from pipelines import jobs
from pipelines.errors import ConfigurationError
from pipelines.features.sentiment import cutoff


def test_dates_span_the_sessions_cutoffs() -> None:
    start, end = jobs.news_window("2024-03-11", "2024-03-12")  # Monday, Tuesday
    assert start == cutoff(date(2024, 3, 8))  # Friday's cutoff: the weekend's news is Monday's
    assert end == datetime(2024, 3, 12, 11, 30, tzinfo=UTC)


def test_datetimes_are_taken_as_given_in_utc() -> None:
    assert jobs.news_window("2024-03-12T06:30-04:00", "2024-03-12T11:30Z") == (
        datetime(2024, 3, 12, 10, 30, tzinfo=UTC),
        datetime(2024, 3, 12, 11, 30, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("start", "end"), [("2024-03-12T06:30", "2024-03-12T08:30"), ("yesterday", "today")]
)
def test_bad_windows_say_what_to_give(start: str, end: str) -> None:
    with pytest.raises(ConfigurationError, match="zone|two dates"):
        jobs.news_window(start, end)
