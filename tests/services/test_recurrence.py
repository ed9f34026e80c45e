"""Local-time recurrence across DST in several zones: one slot per local date, at the local wall time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from models.checkin import WEEKDAYS
from services.recurrence import end_of_local_day, parse_local_time, parse_weekdays, slots


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _all(zone: str, at: str, start: datetime, days: int) -> list:
    return list(slots(WEEKDAYS, parse_local_time(at), zone, start=start, end=start + timedelta(days=days)))


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Europe/London", "Australia/Sydney",
                                  "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Chatham", "America/Santiago"])
def test_every_local_day_has_exactly_one_slot_at_the_wall_time(zone: str) -> None:
    found = _all(zone, "09:30", utc(2026, 1, 1), 365)
    assert len(found) == 365
    assert len({s.local_date for s in found}) == 365
    for s in found:
        local = s.due_at.astimezone(ZoneInfo(zone))
        assert (local.date(), local.hour, local.minute) == (s.local_date, 9, 30)


def test_berlin_0930_on_both_sides_of_spring_and_fall_changes() -> None:
    found = {s.local_date: s.due_at for s in _all("Europe/Berlin", "09:30", utc(2026, 3, 27), 220)}
    assert found[date(2026, 3, 28)] == utc(2026, 3, 28, 8, 30)  # CET, UTC+1
    assert found[date(2026, 3, 29)] == utc(2026, 3, 29, 7, 30)  # CEST, UTC+2 (change that night)
    assert found[date(2026, 10, 24)] == utc(2026, 10, 24, 7, 30)
    assert found[date(2026, 10, 25)] == utc(2026, 10, 25, 8, 30)


def test_new_york_0130_fires_once_on_the_fall_back_day() -> None:
    found = _all("America/New_York", "01:30", utc(2026, 10, 31), 3)
    on_day = [s for s in found if s.local_date == date(2026, 11, 1)]
    assert [s.due_at for s in on_day] == [utc(2026, 11, 1, 5, 30)]  # the first 01:30 (EDT), not 06:30Z too


def test_new_york_0230_on_the_spring_forward_day_moves_past_the_gap() -> None:
    found = {s.local_date: s.due_at for s in _all("America/New_York", "02:30", utc(2026, 3, 7), 3)}
    assert found[date(2026, 3, 8)] == utc(2026, 3, 8, 7, 30)  # 03:30 EDT
    assert found[date(2026, 3, 9)] == utc(2026, 3, 9, 6, 30)


def test_weekdays() -> None:
    assert parse_weekdays("mon,wed,fri") == ("mon", "wed", "fri")
    assert parse_weekdays("Mon-Wed") == ("mon", "tue", "wed")
    assert parse_weekdays("fri-mon") == ("mon", "fri", "sat", "sun")
    assert parse_weekdays("weekdays") == WEEKDAYS[:5]
    assert parse_weekdays("Monday, friday") == ("mon", "fri")
    with pytest.raises(ValueError, match="not a weekday"):
        parse_weekdays("mon,funday")
    with pytest.raises(ValueError, match="HH:MM"):
        parse_local_time("25:00")


def test_end_of_local_day() -> None:
    assert end_of_local_day(date(2026, 11, 1), "America/New_York") == utc(2026, 11, 2, 5, 0)
