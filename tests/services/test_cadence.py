"""Pulse cadences: every N weeks from a start date, and the Nth / last weekday of the month, at a local wall
time across DST changes and month and year ends."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from services.recurrence import LAST, Cadence, cadence_slots, nth_weekday, parse_local_time


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_every_two_weeks_counts_from_the_first_weekday_on_or_after_the_start() -> None:
    c = Cadence("tue", every_weeks=2, anchor=date(2026, 3, 4))  # a Wednesday: the first Tuesday is the 10th
    assert list(c.dates(date(2026, 3, 1), date(2026, 4, 30))) == [
        date(2026, 3, 10), date(2026, 3, 24), date(2026, 4, 7), date(2026, 4, 21)]
    # Asked from the middle of the series, it stays on the same beat.
    assert next(c.dates(date(2026, 3, 25), date(2026, 12, 31))) == date(2026, 4, 7)
    assert next(c.dates(date(2026, 4, 7), date(2026, 12, 31))) == date(2026, 4, 7)


def test_nth_and_last_weekday_of_the_month() -> None:
    assert nth_weekday(2026, 3, 0, 1) == date(2026, 3, 2)
    assert nth_weekday(2026, 3, 0, 4) == date(2026, 3, 23)
    assert nth_weekday(2026, 3, 0, LAST) == date(2026, 3, 30)
    assert nth_weekday(2026, 2, 5, LAST) == date(2026, 2, 28)  # February ends on a Saturday
    assert nth_weekday(2026, 12, 3, LAST) == date(2026, 12, 31)  # the year's last day
    assert nth_weekday(2028, 2, 1, LAST) == date(2028, 2, 29)  # a leap day
    c = Cadence("fri", nth=LAST)
    assert list(c.dates(date(2026, 11, 1), date(2027, 2, 28))) == [
        date(2026, 11, 27), date(2026, 12, 25), date(2027, 1, 29), date(2027, 2, 26)]


def test_monthly_at_a_wall_time_across_both_dst_changes() -> None:
    zone = "Europe/Berlin"
    found = list(cadence_slots(Cadence("sun", nth=LAST), parse_local_time("10:00"), zone,
                               start=utc(2026, 1, 1), end=utc(2027, 1, 1)))
    assert len(found) == 12
    for s in found:
        local = s.due_at.astimezone(ZoneInfo(zone))
        assert (local.date(), local.hour, local.minute) == (s.local_date, 10, 0)
    by_day = {s.local_date: s.due_at for s in found}
    assert by_day[date(2026, 3, 29)] == utc(2026, 3, 29, 8, 0)  # the day clocks go forward: CEST
    assert by_day[date(2026, 10, 25)] == utc(2026, 10, 25, 9, 0)  # the day they go back: CET


def test_every_week_in_new_york_keeps_its_wall_time_and_one_slot_a_day() -> None:
    zone = "America/New_York"
    found = list(cadence_slots(Cadence("sun", every_weeks=1, anchor=date(2026, 1, 1)), parse_local_time("01:30"),
                               zone, start=utc(2026, 1, 1), end=utc(2027, 1, 1)))
    assert len(found) == len({s.local_date for s in found}) == 52
    assert {s.local_date: s.due_at for s in found}[date(2026, 11, 1)] == utc(2026, 11, 1, 5, 30)  # first 01:30


def test_bad_cadences_are_refused() -> None:
    with pytest.raises(ValueError, match="1 to 52"):
        Cadence("mon", every_weeks=0, anchor=date(2026, 1, 1))
    with pytest.raises(ValueError, match="fourth, or the last"):
        Cadence("mon", nth=5)
    with pytest.raises(ValueError, match="not a weekday"):
        Cadence("xyz", nth=1)
