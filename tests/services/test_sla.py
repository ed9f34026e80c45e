"""SLA clocks: business hours across weekends and DST, pause/resume, stop, reopen, the ladder, targets and time
left as text, and the issue figures. Pure maths on fixed moments: no clock is read, nothing sleeps."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.sla import (
    DASH,
    DEFAULT_TARGETS,
    LEVEL_FRACTION,
    SEVERITY_ORDER,
    IssueFacts,
    Level,
    Severity,
    SlaClock,
    Targets,
    WorkingHours,
    add_working,
    counted,
    format_left,
    format_target,
    issue_counts,
    issue_figures,
    ladder,
    parse_target,
    parse_working_hours,
    working_between,
)

BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"
OFFICE = WorkingHours()  # Mon-Fri 09:00-17:00
H, M, D = timedelta(hours=1), timedelta(minutes=1), timedelta(days=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: str, *args: int) -> datetime:
    """A wall-clock moment in `zone`, as aware UTC."""
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def wall(moment: datetime, zone: str) -> tuple[str, int, int]:
    """What a person in `zone` reads on the clock: weekday, hour, minute."""
    there = moment.astimezone(ZoneInfo(zone))
    return there.strftime("%a"), there.hour, there.minute


# -- business hours -----------------------------------------------------------------------------------------------
def test_the_issues_example_friday_1600_plus_4h_is_monday_1200() -> None:
    start = local(BERLIN, 2026, 1, 9, 16, 0)  # a Friday
    due = add_working(start, 4 * H, BERLIN, OFFICE)
    assert due == local(BERLIN, 2026, 1, 12, 12, 0)
    assert wall(due, BERLIN) == ("Mon", 12, 0)
    assert working_between(start, due, BERLIN, OFFICE) == 4 * H


@pytest.mark.parametrize(("zone", "friday", "expected_utc"), [
    # Berlin springs forward on Sunday 29 March 2026 (CET +1 -> CEST +2)
    (BERLIN, date(2026, 3, 27), utc(2026, 3, 30, 10, 0)),
    # Berlin falls back on Sunday 25 October 2026 (CEST +2 -> CET +1)
    (BERLIN, date(2026, 10, 23), utc(2026, 10, 26, 11, 0)),
    # New York springs forward on Sunday 8 March 2026 (EST -5 -> EDT -4)
    (NEW_YORK, date(2026, 3, 6), utc(2026, 3, 9, 16, 0)),
    # New York falls back on Sunday 1 November 2026 (EDT -4 -> EST -5)
    (NEW_YORK, date(2026, 10, 30), utc(2026, 11, 2, 17, 0)),
])
def test_a_weekend_with_a_dst_change_still_gives_monday_1200_local(zone: str, friday: date,
                                                                   expected_utc: datetime) -> None:
    start = local(zone, friday.year, friday.month, friday.day, 16, 0)
    due = add_working(start, 4 * H, zone, OFFICE)
    assert due == expected_utc
    assert wall(due, zone) == ("Mon", 12, 0)
    assert working_between(start, due, zone, OFFICE) == 4 * H


@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK])
def test_a_long_clock_over_both_dst_changes_opens_and_closes_at_local_office_hours(zone: str) -> None:
    # 30 days of counted time = 720 h = 18 working weeks of 40 h, running from January over the March change.
    start = local(zone, 2026, 1, 5, 9, 0)  # Monday
    due = add_working(start, 30 * D, zone, OFFICE)
    assert due == local(zone, 2026, 5, 8, 17, 0)  # the Friday of the 18th week, at closing time
    # and one over the autumn change: 3 working weeks from a Monday in October end on a Friday at 17:00.
    autumn = local(zone, 2026, 10, 19, 9, 0)
    assert add_working(autumn, 120 * H, zone, OFFICE) == local(zone, 2026, 11, 6, 17, 0)
    # every working day keeps 8 counted hours on both sides of the changes
    for day in (date(2026, 3, 6), date(2026, 3, 9), date(2026, 3, 27), date(2026, 3, 30),
                date(2026, 10, 23), date(2026, 10, 26), date(2026, 10, 30), date(2026, 11, 2)):
        a = local(zone, day.year, day.month, day.day, 0, 0)
        assert working_between(a, a + D, zone, OFFICE) == 8 * H, day


def test_every_minute_clock_counts_real_time_across_dst() -> None:
    saturday_noon = local(BERLIN, 2026, 3, 28, 12, 0)
    due = add_working(saturday_noon, D, BERLIN, None)
    assert due == saturday_noon + D  # 24 hours really pass ...
    assert wall(due, BERLIN) == ("Sun", 13, 0)  # ... which reads 13:00 after the clocks went forward
    assert working_between(saturday_noon, due, BERLIN, None) == D
    assert working_between(due, saturday_noon, BERLIN, None) == timedelta(0)


def test_hours_spanning_the_night_change_count_the_time_that_really_passed() -> None:
    nights = WorkingHours(frozenset(range(7)), time(1, 0), time(4, 0))
    def day_total(d: date) -> timedelta:
        start = local(BERLIN, d.year, d.month, d.day, 0, 0)
        return working_between(start, local(BERLIN, (d + D).year, (d + D).month, (d + D).day, 0, 0), BERLIN, nights)
    assert day_total(date(2026, 3, 28)) == 3 * H
    assert day_total(date(2026, 3, 29)) == 2 * H  # 02:00-03:00 does not exist that night
    assert day_total(date(2026, 10, 25)) == 4 * H  # 02:00-03:00 happens twice
    week = working_between(local(BERLIN, 2026, 3, 23, 0, 0), local(BERLIN, 2026, 3, 30, 0, 0), BERLIN, nights)
    assert week == 6 * 3 * H + 2 * H


def test_an_opening_that_falls_into_the_spring_forward_gap_counts_nothing_that_day() -> None:
    # 02:30 does not exist in Berlin on 29 March 2026 (it is read as 03:30), so 02:30-03:00 is no time at all
    short = WorkingHours(frozenset(range(7)), time(2, 30), time(3, 0))
    week = working_between(local(BERLIN, 2026, 3, 23, 0, 0), local(BERLIN, 2026, 3, 30, 0, 0), BERLIN, short)
    assert week == 6 * 30 * M
    saturday = local(BERLIN, 2026, 3, 28, 2, 30)
    assert add_working(saturday, 45 * M, BERLIN, short) == local(BERLIN, 2026, 3, 30, 2, 45)  # Sat, (Sun), Mon


@pytest.mark.parametrize(("start", "expected"), [
    ((2026, 1, 13, 7, 0), (2026, 1, 13, 10, 0)),  # before opening: counts from 09:00
    ((2026, 1, 13, 18, 0), (2026, 1, 14, 10, 0)),  # after closing: the next morning
    ((2026, 1, 17, 10, 0), (2026, 1, 19, 10, 0)),  # Saturday: Monday morning
    ((2026, 1, 18, 23, 59), (2026, 1, 19, 10, 0)),  # Sunday night
    ((2026, 1, 13, 16, 0), (2026, 1, 13, 17, 0)),  # ending exactly at closing stays on the day
    ((2026, 1, 13, 17, 0), (2026, 1, 14, 10, 0)),  # starting at closing counts nothing that day
])
def test_a_start_outside_working_hours_counts_from_the_next_opening(start: tuple, expected: tuple) -> None:
    assert add_working(local(BERLIN, *start), H, BERLIN, OFFICE) == local(BERLIN, *expected)


def test_nothing_counts_outside_working_hours() -> None:
    friday_close = local(BERLIN, 2026, 1, 16, 17, 0)
    monday_open = local(BERLIN, 2026, 1, 19, 9, 0)
    assert working_between(friday_close, monday_open, BERLIN, OFFICE) == timedelta(0)
    assert working_between(local(BERLIN, 2026, 1, 16, 9, 0), monday_open, BERLIN, OFFICE) == 8 * H
    assert working_between(monday_open, friday_close, BERLIN, OFFICE) == timedelta(0)  # b before a
    assert add_working(friday_close, timedelta(0), BERLIN, OFFICE) == friday_close


def test_other_working_days_than_monday_to_friday() -> None:
    tue_thu = parse_working_hours("tue,thu", "10:00", "12:00")
    start = local(BERLIN, 2026, 1, 13, 11, 0)  # Tuesday 11:00: 1 h that day, then Thursday
    assert add_working(start, 3 * H, BERLIN, tue_thu) == local(BERLIN, 2026, 1, 15, 12, 0)
    weekends = parse_working_hours("sat-sun", "10:00", "14:00")
    friday = local(NEW_YORK, 2026, 1, 16, 12, 0)
    assert add_working(friday, 5 * H, NEW_YORK, weekends) == local(NEW_YORK, 2026, 1, 18, 11, 0)
    assert working_between(friday, local(NEW_YORK, 2026, 1, 23, 12, 0), NEW_YORK, weekends) == 8 * H


def test_results_are_utc_and_naive_moments_are_refused() -> None:
    start = datetime(2026, 1, 9, 16, 0, tzinfo=ZoneInfo(BERLIN))
    assert add_working(start, 4 * H, BERLIN, OFFICE).tzinfo is UTC
    assert add_working(start, H, BERLIN, None).tzinfo is UTC
    with pytest.raises(ValueError, match="timezone-aware"):
        add_working(datetime(2026, 1, 9, 16, 0), H, BERLIN, OFFICE)
    with pytest.raises(ValueError, match="timezone-aware"):
        working_between(datetime(2026, 1, 9), utc(2026, 1, 10), BERLIN, OFFICE)


def _reference_between(a: datetime, b: datetime, zone: str, hours: WorkingHours) -> timedelta:
    """Day by day, with zoneinfo directly: what the week-at-a-time code must agree with."""
    tz = ZoneInfo(zone)
    total = timedelta(0)
    day = a.astimezone(tz).date() - D
    while day <= b.astimezone(tz).date():
        if day.weekday() in hours.days:
            opens = datetime.combine(day, hours.start, tzinfo=tz).astimezone(UTC)
            closes = datetime.combine(day, hours.end, tzinfo=tz).astimezone(UTC)
            lo, hi = max(opens, a), min(closes, b)
            if hi > lo:
                total += hi - lo
        day += D
    return total


@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK])
@pytest.mark.parametrize("hours", [OFFICE, parse_working_hours("mon,wed,sat", "08:30", "12:15"),
                                   WorkingHours(frozenset(range(7)), time(1, 0), time(4, 0))])
def test_week_at_a_time_maths_agrees_with_a_day_by_day_count(zone: str, hours: WorkingHours) -> None:
    rng = random.Random(9)
    for _ in range(150):
        a = utc(2025, 12, 1) + timedelta(minutes=rng.randrange(400 * 24 * 60))
        amount = timedelta(minutes=rng.choice([1, 59, 60, 61, 480, 2400, 10080, 43200, rng.randrange(1, 90000)]))
        due = add_working(a, amount, zone, hours)
        assert _reference_between(a, due, zone, hours) == amount, (a, amount)
        assert _reference_between(a, due - M, zone, hours) < amount  # the first such moment, not a later one
        b = a + timedelta(minutes=rng.randrange(200 * 24 * 60))
        assert working_between(a, b, zone, hours) == _reference_between(a, b, zone, hours), (a, b)


# -- working hours as settings ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("days", "start", "end", "described"), [
    ("mon-fri", "09:00", "17:00", "Mon-Fri 09:00-17:00"),
    ("weekdays", "9:00", "17:00", "Mon-Fri 09:00-17:00"),
    ("mon,tue,thu", "08:30", "12:00", "Mon, Tue, Thu 08:30-12:00"),
    ("Mon Tue Wed Fri", "07:00", "15:30", "Mon-Wed, Fri 07:00-15:30"),
    ("sat,sun", "10:00", "14:00", "Sat, Sun 10:00-14:00"),
    ("mon-sun", "00:00", "23:59", "Mon-Sun 00:00-23:59"),
])
def test_parse_and_describe_working_hours(days: str, start: str, end: str, described: str) -> None:
    # written here with hyphens; the description uses en dashes, as Slack text should
    hours = parse_working_hours(days, start, end)
    assert hours.describe() == described.replace("-", DASH)
    assert WorkingHours().describe() == "Mon\u2013Fri 09:00\u201317:00"


@pytest.mark.parametrize(("days", "start", "end", "says"), [
    ("funday", "09:00", "17:00", "mon-fri"),
    ("", "09:00", "17:00", "mon-fri"),
    ("mon-fri", "9am", "17:00", "HH:MM"),
    ("mon-fri", "09:00", "25:00", "HH:MM"),
    ("mon-fri", "17:00", "09:00", "end after they start"),
    ("mon-fri", "09:00", "09:00", "end after they start"),
])
def test_bad_working_hours_are_refused_with_the_expected_form(days: str, start: str, end: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_working_hours(days, start, end)


def test_working_hours_cannot_be_built_empty_or_backwards() -> None:
    with pytest.raises(ValueError):
        WorkingHours(frozenset())
    with pytest.raises(ValueError):
        WorkingHours(frozenset({7}))
    with pytest.raises(ValueError):
        WorkingHours(start=time(17, 0), end=time(9, 0))


# -- targets and time left as text --------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "amount"), [
    ("90m", 90 * M), ("1h", H), ("4 h", 4 * H), ("1 day", D), ("3d", 3 * D), ("2 days 4 hours", 2 * D + 4 * H),
    ("1h30m", 90 * M), ("1.5 days", 36 * H), ("2 days, 4 hours", 2 * D + 4 * H), ("1 week", 7 * D),
    ("45 min", 45 * M), (" 3 Days ", 3 * D), ("365 days", 365 * D), ("0.1h", 6 * M), ("1 day and 2 h", 26 * H),
])
def test_parse_target(text: str, amount: timedelta) -> None:
    assert parse_target(text) == amount


@pytest.mark.parametrize(("text", "says"), [
    ("", "not a target"), ("soon", "not a target"), ("5", "not a target"), ("4 parsecs", "not a target"),
    ("1h later", "not a target"), ("h4", "not a target"), ("0h", "more than zero"), ("-1h", "more than zero"),
    ("0 days 0 min", "more than zero"), ("366 days", "at most 365 days"), ("53 weeks", "at most 365 days"),
    ("0.01h", "whole number of minutes"),
])
def test_bad_targets_are_refused_saying_the_expected_form(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as refused:
        parse_target(text)
    assert "90m" in str(refused.value) or "365" in str(refused.value)


@pytest.mark.parametrize(("amount", "text"), [
    (H, "1 h"), (4 * H, "4 h"), (D, "1 day"), (3 * D, "3 days"), (28 * H, "1 day 4 h"), (90 * M, "90 min"),
    (45 * M, "45 min"), (150 * M, "2 h 30 min"), (30 * D, "30 days"), (D + 5 * M, "1 day 5 min"),
])
def test_format_target_reads_back_the_same(amount: timedelta, text: str) -> None:
    assert format_target(amount) == text
    assert parse_target(text) == amount


def test_every_default_target_formats_and_parses_back() -> None:
    for severity in SEVERITY_ORDER:
        for amount in (DEFAULT_TARGETS[severity].acknowledge, DEFAULT_TARGETS[severity].resolve):
            assert parse_target(format_target(amount)) == amount


@pytest.mark.parametrize(("amount", "text"), [
    (2 * H + 10 * M, "2 h 10 min left"), (-3 * H, "3 h late"), (2 * H, "2 h left"), (45 * M, "45 min left"),
    (D + 3 * H + 20 * M, "1 day 3 h left"), (2 * D, "2 days left"), (-(D + 5 * M), "1 day late"),
    (-(2 * D + 7 * H), "2 days 7 h late"), (timedelta(seconds=30), "1 min left"),
    (timedelta(seconds=-30), "1 min late"), (timedelta(0), "0 min left"), (-(90 * M), "1 h 30 min late"),
])
def test_format_left_is_coarse_and_says_late_when_negative(amount: timedelta, text: str) -> None:
    assert format_left(amount) == text


@pytest.mark.parametrize(("text", "amount"), [
    ("1 day", 8 * H), ("3d", 24 * H), ("1 week", 40 * H), ("2 days 4 hours", 20 * H), ("1.5 days", 12 * H),
    ("24h", 24 * H), ("90m", 90 * M), ("365 days", 365 * 8 * H),
])
def test_with_business_hours_days_and_weeks_are_working_days_and_weeks(text: str, amount: timedelta) -> None:
    assert parse_target(text, OFFICE) == amount  # a working day of 09:00-17:00 is 8 h, a week 5 of them


def test_a_working_day_is_as_long_as_the_opening_and_a_week_has_the_working_days() -> None:
    mornings = WorkingHours(frozenset({0, 1, 3}), time(8, 30), time(12, 0))
    assert parse_target("1 day", mornings) == 3 * H + 30 * M and parse_target("1 week", mornings) == 10 * H + 30 * M
    assert format_target(5 * H, mornings) == "1 day 1 h 30 min" and parse_target("1 day 1 h 30 min", mornings) == 5 * H
    with pytest.raises(ValueError, match="at most 365 days"):
        parse_target("366 days", mornings)


@pytest.mark.parametrize(("amount", "text"), [
    (8 * H, "1 day"), (24 * H, "3 days"), (20 * H, "2 days 4 h"), (4 * H, "4 h"), (90 * M, "90 min"),
    (40 * H, "5 days"), (9 * H + 5 * M, "1 day 1 h 5 min"),
])
def test_with_business_hours_targets_read_back_in_working_days(amount: timedelta, text: str) -> None:
    assert format_target(amount, OFFICE) == text
    assert parse_target(text, OFFICE) == amount


def test_time_left_in_working_days_with_business_hours_and_24_hour_days_without() -> None:
    assert format_left(10 * H, OFFICE) == "1 day 2 h left" and format_left(-(17 * H), OFFICE) == "2 days 1 h late"
    assert format_left(10 * H) == "10 h left" and format_left(26 * H) == "1 day 2 h left"


def test_default_targets_count_their_days_as_working_days_with_business_hours() -> None:
    assert counted(D, OFFICE) == 8 * H and counted(7 * D, OFFICE) == 56 * H and counted(4 * H, OFFICE) == 4 * H
    assert counted(D, None) == D and counted(30 * D, None) == 30 * D
    assert OFFICE.day_length == 8 * H


# -- severities and targets -----------------------------------------------------------------------------------------
def test_defaults_per_severity_and_order() -> None:
    assert SEVERITY_ORDER == (Severity.CRITICAL, Severity.HIGH, Severity.NORMAL, Severity.LOW)
    assert DEFAULT_TARGETS[Severity.CRITICAL] == Targets(H, D)
    assert DEFAULT_TARGETS[Severity.HIGH] == Targets(4 * H, 3 * D)
    assert DEFAULT_TARGETS[Severity.NORMAL] == Targets(D, 7 * D)
    assert DEFAULT_TARGETS[Severity.LOW] == Targets(3 * D, 30 * D)
    assert Severity("critical") is Severity.CRITICAL and str(Severity.LOW) == "low"
    with pytest.raises(TypeError):
        DEFAULT_TARGETS[Severity.LOW] = Targets(H, H)  # type: ignore[index]


# -- clocks ---------------------------------------------------------------------------------------------------------
T0 = utc(2026, 1, 13, 10, 0)  # a Tuesday


def test_a_clock_runs_from_its_start() -> None:
    clock = SlaClock.start(H, T0)
    assert clock.running and clock.met() is None
    assert clock.used(T0 + 20 * M, BERLIN, None) == 20 * M
    assert clock.left(T0 + 20 * M, BERLIN, None) == 40 * M
    assert clock.left(T0 + 3 * H, BERLIN, None) == -2 * H
    assert clock.due_at(BERLIN, None) == T0 + H


def test_pause_and_resume_keep_the_time_left() -> None:
    clock = SlaClock.start(4 * H, local(BERLIN, 2026, 1, 12, 9, 0))  # Monday 09:00, business hours
    paused = clock.pause(local(BERLIN, 2026, 1, 12, 12, 0), BERLIN, OFFICE)
    assert not paused.running and paused.consumed == 3 * H
    assert paused.due_at(BERLIN, OFFICE) is None and ladder(paused, BERLIN, OFFICE) == []
    # a paused clock does not move, however long it waits
    assert paused.left(local(BERLIN, 2026, 1, 14, 15, 0), BERLIN, OFFICE) == H
    resumed = paused.resume(local(BERLIN, 2026, 1, 14, 15, 0))  # Wednesday 15:00
    assert resumed.running and resumed.due_at(BERLIN, OFFICE) == local(BERLIN, 2026, 1, 14, 16, 0)
    # resumed late on a Friday: the hour left runs into Monday
    friday = paused.resume(local(BERLIN, 2026, 1, 16, 16, 30))
    assert friday.due_at(BERLIN, OFFICE) == local(BERLIN, 2026, 1, 19, 9, 30)
    assert friday.left(local(BERLIN, 2026, 1, 16, 17, 0), BERLIN, OFFICE) == 30 * M


@pytest.mark.parametrize(("zone", "friday", "monday"), [
    (NEW_YORK, (2026, 3, 6), (2026, 3, 9)), (NEW_YORK, (2026, 10, 30), (2026, 11, 2)),
    (BERLIN, (2026, 3, 27), (2026, 3, 30)), (BERLIN, (2026, 10, 23), (2026, 10, 26)),
])
def test_a_clock_paused_before_a_dst_change_resumes_after_it_with_the_time_left(
        zone: str, friday: tuple[int, int, int], monday: tuple[int, int, int]) -> None:
    clock = SlaClock.start(4 * H, local(zone, *friday, 15, 0)).pause(local(zone, *friday, 16, 0), zone, OFFICE)
    assert clock.consumed == H
    resumed = clock.resume(local(zone, *monday, 10, 0))
    assert resumed.due_at(zone, OFFICE) == local(zone, *monday, 13, 0)
    assert resumed.left(local(zone, *monday, 11, 0), zone, OFFICE) == 2 * H
    assert resumed.stop(local(zone, *monday, 13, 1), zone, OFFICE).met() is False


def test_pause_resume_and_stop_are_no_ops_where_they_do_not_apply() -> None:
    clock = SlaClock.start(H, T0)
    assert clock.resume(T0 + M) == clock  # already running
    paused = clock.pause(T0 + 10 * M, BERLIN, None)
    assert paused.pause(T0 + 50 * M, BERLIN, None) == paused  # already paused
    stopped = clock.stop(T0 + 30 * M, BERLIN, None)
    assert stopped.stop(T0 + 5 * H, BERLIN, None) == stopped
    assert stopped.resume(T0 + 5 * H) == stopped  # a stopped clock never restarts
    assert stopped.pause(T0 + 5 * H, BERLIN, None) == stopped


def test_stop_records_whether_the_target_was_met() -> None:
    clock = SlaClock.start(H, T0)
    in_time = clock.stop(T0 + 59 * M, BERLIN, None)
    assert in_time.met() is True and not in_time.running and in_time.stopped_at == T0 + 59 * M
    assert in_time.used(T0 + 10 * H, BERLIN, None) == 59 * M  # frozen once stopped
    assert clock.stop(T0 + H, BERLIN, None).met() is True  # exactly on target counts as met
    assert clock.stop(T0 + H + M, BERLIN, None).met() is False
    assert ladder(in_time, BERLIN, None) == [] and in_time.due_at(BERLIN, None) is None


def test_stopping_a_paused_clock_keeps_what_it_had_used() -> None:
    paused = SlaClock.start(H, T0).pause(T0 + 40 * M, BERLIN, None)
    stopped = paused.stop(T0 + 10 * H, BERLIN, None)
    assert stopped.consumed == 40 * M and stopped.met() is True


def test_outside_hours_a_clock_stopped_over_the_weekend_used_only_working_time() -> None:
    clock = SlaClock.start(4 * H, local(BERLIN, 2026, 1, 9, 16, 0))
    stopped = clock.stop(local(BERLIN, 2026, 1, 12, 11, 0), BERLIN, OFFICE)  # Monday 11:00
    assert stopped.consumed == 3 * H and stopped.met() is True


def test_reopen_is_a_new_clock_with_the_full_target() -> None:
    first = SlaClock.start(D, T0).stop(T0 + 30 * H, BERLIN, None)
    assert first.met() is False
    reopened_at = T0 + 3 * D
    again = SlaClock.start(first.target, reopened_at)
    assert again.consumed == timedelta(0) and again.running
    assert again.due_at(BERLIN, None) == reopened_at + D
    assert [m for _, m in ladder(again, BERLIN, None)] == [reopened_at + 0.8 * D, reopened_at + D,
                                                           reopened_at + 2 * D]


def test_reaches_a_moment_passed_on_this_run_or_before_the_pause() -> None:
    clock = SlaClock.start(H, T0)
    assert clock.reaches(1.0, BERLIN, None) == T0 + H  # in the past once now > T0 + 1 h: the moment it passed
    paused = clock.pause(T0 + 90 * M, BERLIN, None)  # breached before the pause
    assert paused.reaches(0.8, BERLIN, None) is None
    resumed = paused.resume(T0 + 3 * H)
    assert resumed.reaches(0.8, BERLIN, None) == T0 + 3 * H  # passed before the pause: the run's start
    assert resumed.reaches(1.0, BERLIN, None) == T0 + 3 * H
    assert resumed.reaches(2.0, BERLIN, None) == T0 + 3 * H + 30 * M  # 30 min of the 2 h still to go


# -- the ladder -----------------------------------------------------------------------------------------------------
def test_ladder_levels_fall_at_80_100_and_200_percent() -> None:
    assert dict(LEVEL_FRACTION) == {Level.WARN: 0.8, Level.BREACH: 1.0, Level.ESCALATE: 2.0}
    assert ladder(SlaClock.start(H, T0), BERLIN, None) == [
        (Level.WARN, T0 + 48 * M), (Level.BREACH, T0 + H), (Level.ESCALATE, T0 + 2 * H)]


def test_ladder_in_business_hours_over_a_weekend() -> None:
    clock = SlaClock.start(4 * H, local(BERLIN, 2026, 1, 9, 16, 0))  # Friday 16:00
    steps = ladder(clock, BERLIN, OFFICE)
    assert [level for level, _ in steps] == [Level.WARN, Level.BREACH, Level.ESCALATE]  # each level once
    assert [wall(m, BERLIN) for _, m in steps] == [("Mon", 11, 12), ("Mon", 12, 0), ("Mon", 16, 0)]


def test_ladder_after_a_pause_keeps_what_was_already_used() -> None:
    clock = SlaClock.start(H, T0).pause(T0 + 30 * M, BERLIN, None).resume(T0 + 5 * H)
    assert ladder(clock, BERLIN, None) == [
        (Level.WARN, T0 + 5 * H + 18 * M), (Level.BREACH, T0 + 5 * H + 30 * M), (Level.ESCALATE, T0 + 6 * H + 30 * M)]
    late = SlaClock.start(H, T0).pause(T0 + 70 * M, BERLIN, None).resume(T0 + 5 * H)
    assert ladder(late, BERLIN, None) == [
        (Level.WARN, T0 + 5 * H), (Level.BREACH, T0 + 5 * H), (Level.ESCALATE, T0 + 5 * H + 50 * M)]


# -- a new target (the issue's severity changed) ----------------------------------------------------------------------
def test_a_running_clock_keeps_what_it_used_and_is_measured_against_the_new_target_from_now() -> None:
    clock = SlaClock.start(D, T0)  # normal: acknowledge within 1 day
    raised = clock.with_target(4 * H, T0 + H, BERLIN, None)  # raised to high after 1 h: 3 h left
    assert raised.target == 4 * H and raised.consumed == H and raised.running_since == T0 + H
    assert raised.due_at(BERLIN, None) == T0 + 4 * H
    assert raised.left(T0 + 2 * H, BERLIN, None) == 2 * H
    assert [m for _, m in ladder(raised, BERLIN, None)] == [T0 + H + 2 * H + 12 * M, T0 + 4 * H, T0 + 8 * H]
    lowered = raised.with_target(3 * D, T0 + 2 * H, BERLIN, None)  # lowered again: 2 h used of 3 days
    assert lowered.consumed == 2 * H and lowered.due_at(BERLIN, None) == T0 + 3 * D


def test_a_clock_that_already_used_more_than_its_new_target_is_due_at_once() -> None:
    clock = SlaClock.start(D, T0).with_target(H, T0 + 5 * H, BERLIN, None)
    assert clock.running and clock.left(T0 + 5 * H, BERLIN, None) == -4 * H
    assert clock.due_at(BERLIN, None) == T0 + 5 * H  # the breach is now, not back in the past of this run
    assert ladder(clock, BERLIN, None) == [(Level.WARN, T0 + 5 * H), (Level.BREACH, T0 + 5 * H),
                                           (Level.ESCALATE, T0 + 5 * H)]


def test_a_new_target_in_business_hours_counts_the_rest_in_working_time() -> None:
    # Started Friday 15:00 with 1 working day; changed to 4 h on Friday 16:30: 1 h 30 min used, 2 h 30 min left,
    # of which 30 min on Friday and 2 h on Monday morning.
    start = local(BERLIN, 2026, 1, 9, 15, 0)
    changed = SlaClock.start(8 * H, start).with_target(4 * H, local(BERLIN, 2026, 1, 9, 16, 30), BERLIN, OFFICE)
    assert changed.consumed == 90 * M
    assert changed.due_at(BERLIN, OFFICE) == local(BERLIN, 2026, 1, 12, 11, 0)
    # Changed on Saturday: Friday's 2 h count, the weekend does not; the 2 h left run from Monday 09:00.
    weekend = SlaClock.start(8 * H, start).with_target(4 * H, local(BERLIN, 2026, 1, 10, 12, 0), BERLIN, OFFICE)
    assert weekend.consumed == 2 * H and weekend.due_at(BERLIN, OFFICE) == local(BERLIN, 2026, 1, 12, 11, 0)


def test_a_paused_clock_takes_the_new_target_and_keeps_waiting() -> None:
    paused = SlaClock.start(D, T0).pause(T0 + 2 * H, BERLIN, None)
    changed = paused.with_target(4 * H, T0 + 10 * H, BERLIN, None)
    assert changed.paused and changed.target == 4 * H and changed.consumed == 2 * H  # the wait does not count
    assert changed.due_at(BERLIN, None) is None
    assert changed.resume(T0 + 20 * H).due_at(BERLIN, None) == T0 + 22 * H


def test_a_stopped_clock_keeps_its_target_and_its_result() -> None:
    missed = SlaClock.start(H, T0).stop(T0 + 2 * H, BERLIN, None)
    assert missed.with_target(D, T0 + 3 * H, BERLIN, None) == missed and missed.met() is False
    met = SlaClock.start(D, T0).stop(T0 + 2 * H, BERLIN, None)
    assert met.with_target(H, T0 + 3 * H, BERLIN, None).met() is True


# -- figures --------------------------------------------------------------------------------------------------------
NOW = utc(2026, 6, 30, 12, 0)


def fact(severity: Severity, status: str, age: timedelta, ack: timedelta | None = None,
         resolve: timedelta | None = None, ack_ok: bool | None = None, resolve_ok: bool | None = None) -> IssueFacts:
    created = NOW - age
    return IssueFacts(severity, status, created, created + ack if ack is not None else None,
                      created + resolve if resolve is not None else None, ack_ok, resolve_ok)


FACTS = [
    fact(Severity.CRITICAL, "resolved", 10 * D, 30 * M, 20 * H, True, True),
    fact(Severity.HIGH, "acknowledged", 20 * D, 5 * H, None, False, None),
    fact(Severity.NORMAL, "open", 5 * D),
    fact(Severity.LOW, "resolved", 60 * D, D, 40 * D, True, False),
    fact(Severity.NORMAL, "waiting", 100 * D, 2 * H, None, True, None),
]


def test_figures_over_the_last_30_days() -> None:
    f = issue_figures(FACTS, NOW, 30)
    assert f.counted == 3
    assert dict(f.by_severity) == {Severity.CRITICAL: 1, Severity.HIGH: 1, Severity.NORMAL: 1, Severity.LOW: 0}
    assert dict(f.by_status) == {"open": 1, "acknowledged": 1, "waiting": 0, "resolved": 1}
    assert f.mean_to_acknowledge == 2 * H + 45 * M  # (30 min + 5 h) / 2; the open one is not counted
    assert f.mean_to_resolve == 20 * H
    assert f.acknowledged_in_time == 0.5
    assert f.resolved_in_time == 1.0


def test_figures_over_the_last_90_days_and_all_time() -> None:
    f = issue_figures(FACTS, NOW, 90)
    assert f.counted == 4
    assert f.mean_to_acknowledge == (30 * M + 5 * H + D) / 3
    assert f.mean_to_resolve == (20 * H + 40 * D) / 2
    assert f.acknowledged_in_time == pytest.approx(2 / 3)
    assert f.resolved_in_time == 0.5
    everything = issue_figures(FACTS, NOW, None)
    assert everything.counted == 5 and everything.by_status["waiting"] == 1
    assert everything.acknowledged_in_time == 0.75


def test_the_window_includes_its_first_moment() -> None:
    edge = [fact(Severity.HIGH, "open", 30 * D), fact(Severity.HIGH, "open", 30 * D + timedelta(seconds=1))]
    assert issue_figures(edge, NOW, 30).counted == 1


def late(severity: Severity, status: str, age: timedelta, *, ack: bool = False, resolve: bool = False) -> IssueFacts:
    """An issue whose clocks are not stopped yet; `ack`/`resolve`: that clock is already past its target."""
    created = NOW - age
    return IssueFacts(severity, status, created, None, None, None, None, acknowledge_overdue=ack,
                      resolve_overdue=resolve)


def test_a_clock_running_past_its_target_counts_as_missed_and_one_within_it_is_not_counted_yet() -> None:
    # A critical issue nobody acknowledged for three days: 0 %, not "n/a".
    assert issue_figures([late(Severity.CRITICAL, "open", 3 * D, ack=True)], NOW, 30).acknowledged_in_time == 0.0
    # One acknowledged on time, ten ignored past their target: 1 in 11, not 100 %.
    facts = [fact(Severity.HIGH, "acknowledged", 5 * D, H, None, True)]
    facts += [late(Severity.HIGH, "open", 4 * D, ack=True, resolve=True) for _ in range(10)]
    f = issue_figures(facts, NOW, 30)
    assert f.acknowledged_in_time == pytest.approx(1 / 11) and f.resolved_in_time == 0.0
    # Still within target: not counted either way.
    within = issue_figures([fact(Severity.HIGH, "acknowledged", 5 * D, H, None, True),
                            late(Severity.HIGH, "open", M)], NOW, 30)
    assert within.acknowledged_in_time == 1.0 and within.resolved_in_time is None


def test_counts_show_every_issue_as_it_stands_whatever_its_age() -> None:
    c = issue_counts([*FACTS, late(Severity.CRITICAL, "open", 400 * D, ack=True)])
    assert (c.total, c.unresolved) == (6, 4)
    assert dict(c.by_status) == {"open": 2, "acknowledged": 1, "waiting": 1, "resolved": 2}
    assert dict(c.unresolved_by_severity) == {Severity.CRITICAL: 1, Severity.HIGH: 1, Severity.NORMAL: 2,
                                              Severity.LOW: 0}
    assert issue_figures([*FACTS, late(Severity.CRITICAL, "open", 400 * D, ack=True)], NOW, 90).counted == 4


def test_figures_with_nothing_to_count_are_none_not_zero() -> None:
    empty = issue_figures([], NOW, 30)
    assert empty.counted == 0 and sum(empty.by_severity.values()) == 0 and sum(empty.by_status.values()) == 0
    assert empty.mean_to_acknowledge is None and empty.mean_to_resolve is None
    assert empty.acknowledged_in_time is None and empty.resolved_in_time is None
    only_open = issue_figures([fact(Severity.LOW, "open", D)], NOW, 30)
    assert only_open.counted == 1
    assert only_open.mean_to_acknowledge is None and only_open.acknowledged_in_time is None
    none_in_time = issue_figures([fact(Severity.LOW, "acknowledged", D, H, None, False)], NOW, 30)
    assert none_in_time.acknowledged_in_time == 0.0  # a real zero: one counted, none in time
