from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest

from pipelines import calendar


def test_holidays_and_weekends_are_not_sessions() -> None:
    assert calendar.is_session(date(2010, 7, 2))
    assert not calendar.is_session(date(2010, 7, 5))  # Independence Day observed
    assert not calendar.is_session(date(2010, 7, 3))  # Saturday
    assert calendar.previous_session(date(2010, 7, 6)) == date(2010, 7, 2)
    assert calendar.next_session(date(2010, 7, 2)) == date(2010, 7, 6)


def test_early_close_is_known() -> None:
    assert calendar.session_close(date(2009, 11, 27)) == pd.Timestamp("2009-11-27 18:00", tz="UTC")
    assert calendar.session_open(date(2009, 11, 27)) == pd.Timestamp("2009-11-27 14:30", tz="UTC")
    with pytest.raises(ValueError, match="not an NYSE session"):
        calendar.session_close(date(2009, 11, 26))


def test_a_weekend_data_interval_covers_only_mondays_session() -> None:
    # market_data's interval from Friday 16:30 New York to Monday 16:30 New York.
    start = datetime(2010, 8, 13, 20, 30, tzinfo=UTC)
    end = datetime(2010, 8, 16, 20, 30, tzinfo=UTC)
    assert calendar.sessions_closing_in(start, end) == [date(2010, 8, 16)]


def test_a_holiday_interval_covers_nothing() -> None:
    start = datetime(2010, 7, 2, 20, 30, tzinfo=UTC)  # Friday close + 30 min
    end = datetime(2010, 7, 5, 20, 30, tzinfo=UTC)  # Monday, a holiday
    assert calendar.sessions_closing_in(start, end) == []


def test_exchange_date_uses_new_york_time() -> None:
    late = datetime(2010, 8, 17, 2, 0, tzinfo=UTC)  # 22:00 on the 16th in New York
    assert calendar.exchange_date(late) == date(2010, 8, 16)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2009, 12, 20), date(2011, 1, 10)),  # across two year boundaries
        (date(1999, 12, 31), date(2000, 1, 3)),
        (date(2010, 3, 5), date(2010, 3, 5)),  # one session
        (date(2010, 3, 6), date(2010, 3, 7)),  # a weekend: empty
        (date(2012, 10, 29), date(2012, 11, 23)),  # Hurricane Sandy closures, an early close
    ],
)
def test_the_schedule_is_pandas_market_calendars_own(start, end) -> None:
    import pandas_market_calendars as mcal

    expected = mcal.get_calendar("NYSE").schedule(start_date=start, end_date=end)
    ours = calendar.schedule(start, end)
    assert list(ours.index) == [ts.date() for ts in expected.index]
    assert list(ours["open"]) == list(expected["market_open"])
    assert list(ours["close"]) == list(expected["market_close"])
