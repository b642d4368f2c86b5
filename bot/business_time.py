"""Deadlines counted in business minutes: working days and hours in the company's time zone, no holidays.

A leaf module (settings-free, clock-free): SLA due times are a pure function of when a ticket opened,
how many minutes the target allows, and the calendar, so they can be tested exhaustively and recomputed
by anyone who reads the config.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class BusinessCalendar:
    timezone: ZoneInfo
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time
    holidays: frozenset[date]

    @classmethod
    def of(cls, timezone: str, days: Iterable[str], start: time, end: time,
           holidays: Iterable[date]) -> BusinessCalendar:
        return cls(ZoneInfo(timezone), frozenset(WEEKDAYS.index(d) for d in days), start, end, frozenset(holidays))

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.holidays

    def add(self, moment: datetime, minutes: float) -> datetime:
        """`moment` plus `minutes` of working time; a moment outside hours starts at the next opening.

        Returns an aware UTC datetime. Raises ValueError if the calendar has no working time at all.
        """
        if not self.days or self.start >= self.end:
            raise ValueError("the business calendar has no working hours")
        local = moment.astimezone(self.timezone)
        remaining = timedelta(minutes=minutes)
        day = local.date()
        for _ in range(3660):  # ten years of days: a calendar with that many holidays is a config error
            if self.is_working_day(day):
                opens = datetime.combine(day, self.start, self.timezone)
                closes = datetime.combine(day, self.end, self.timezone)
                begin = max(local, opens)
                if begin < closes:
                    available = closes - begin
                    if remaining <= available:
                        return (begin + remaining).astimezone(UTC)
                    remaining -= available
            day += timedelta(days=1)
            local = datetime.combine(day, time(0), self.timezone)
        raise ValueError("no working time found within ten years; check sla.holidays and business_hours")


def add_wall_minutes(moment: datetime, minutes: float) -> datetime:
    """Round-the-clock targets (e.g. VIPs): plain elapsed minutes."""
    return (moment + timedelta(minutes=minutes)).astimezone(UTC)
