"""Business-minute deadlines: working hours in Jakarta, weekends and holidays skipped."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from bot.business_time import BusinessCalendar, add_wall_minutes

WIB = timedelta(hours=7)
CAL = BusinessCalendar.of("Asia/Jakarta", ("mon", "tue", "wed", "thu", "fri"), time(8), time(17),
                          [date(2026, 12, 25)])


def wib(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC) - WIB


@pytest.mark.parametrize(
    ("start", "minutes", "due"),
    [
        (wib(2026, 11, 23, 9), 60, wib(2026, 11, 23, 10)),            # Monday, inside hours
        (wib(2026, 11, 23, 16, 30), 60, wib(2026, 11, 24, 8, 30)),    # runs over the evening
        (wib(2026, 11, 23, 6), 30, wib(2026, 11, 23, 8, 30)),         # before opening: starts at 08:00
        (wib(2026, 11, 23, 20), 30, wib(2026, 11, 24, 8, 30)),        # after closing: next morning
        (wib(2026, 11, 27, 16), 120, wib(2026, 11, 30, 9)),           # Friday afternoon -> Monday
        (wib(2026, 11, 28, 10), 10, wib(2026, 11, 30, 8, 10)),        # Saturday is not a working day
        (wib(2026, 12, 24, 16), 120, wib(2026, 12, 28, 9)),           # Christmas holiday, then the weekend
        (wib(2026, 11, 23, 8), 540 * 2, wib(2026, 11, 24, 17)),       # exactly two working days
    ],
)
def test_business_minutes_skip_nights_weekends_and_holidays(start, minutes, due):
    assert CAL.add(start, minutes) == due


def test_results_are_utc_and_round_the_clock_targets_ignore_the_calendar():
    assert CAL.add(wib(2026, 11, 23, 9), 1).tzinfo == UTC
    assert add_wall_minutes(wib(2026, 11, 28, 23), 30) == wib(2026, 11, 28, 23, 30)


def test_a_calendar_without_working_time_is_an_error_not_a_hang():
    nothing = BusinessCalendar.of("Asia/Jakarta", (), time(8), time(17), [])
    with pytest.raises(ValueError, match="no working hours"):
        nothing.add(wib(2026, 11, 23, 9), 10)
