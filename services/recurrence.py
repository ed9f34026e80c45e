"""Pure time maths for local-time schedules (no database, no Slack).

A schedule is weekdays + a wall-clock time + an IANA zone. Slots are keyed by *local date*, so a DST
change can never produce two slots on one day: a wall time that repeats (fall back) takes its first
instance; a wall time that does not exist (spring forward) moves forward by the gap, as Python's
zoneinfo does for fold=0.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from models.checkin import WEEKDAYS

_ALIASES = {
    "weekdays": WEEKDAYS[:5], "daily": WEEKDAYS, "everyday": WEEKDAYS, "weekends": WEEKDAYS[5:],
}


def parse_weekdays(text: str) -> tuple[str, ...]:
    """'mon,wed,fri' / 'Mon Wed' / 'mon-fri' / 'weekdays' -> ('mon', 'wed', 'fri'); ValueError if unknown."""
    days: set[str] = set()
    for part in text.replace(" ", ",").split(","):
        part = part.strip().lower()
        if not part:
            continue
        if part in _ALIASES:
            days.update(_ALIASES[part])
        elif "-" in part:
            start, _, end = part.partition("-")
            a, b = _day(start), _day(end)
            i, j = WEEKDAYS.index(a), WEEKDAYS.index(b)
            span = range(i, j + 1) if i <= j else [*range(i, 7), *range(0, j + 1)]
            days.update(WEEKDAYS[k] for k in span)
        else:
            days.add(_day(part))
    if not days:
        raise ValueError("no weekdays given (use e.g. mon,wed,fri or weekdays)")
    return tuple(d for d in WEEKDAYS if d in days)


def _day(token: str) -> str:
    key = token[:3]
    if key not in WEEKDAYS or (len(token) > 3 and not "monday tuesday wednesday thursday friday saturday sunday"
                               .split()[WEEKDAYS.index(key)].startswith(token)):
        raise ValueError(f"'{token}' is not a weekday (use mon, tue, wed, thu, fri, sat, sun)")
    return key


def parse_local_time(text: str) -> time:
    """'09:30' / '9:30' / '17:05' -> time; ValueError otherwise."""
    try:
        hours, minutes = text.strip().split(":")
        value = time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"'{text}' is not a time of day (use HH:MM, e.g. 09:30)") from None
    return value


def local_to_utc(day: date, at: time, zone: str) -> datetime:
    """The UTC instant of wall time `at` on local date `day` (first instance when ambiguous,
    shifted past the gap when it does not exist)."""
    # fold=0: zoneinfo takes the first instance of a repeated wall time, and resolves a missing one with
    # the offset from before the gap, which lands after the gap.
    return datetime.combine(day, at, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def local_date(moment: datetime, zone: str) -> date:
    return moment.astimezone(ZoneInfo(zone)).date()


def end_of_local_day(day: date, zone: str) -> datetime:
    """The first UTC instant of the next local day (exclusive end of `day`)."""
    return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=ZoneInfo(zone)).astimezone(UTC)


@dataclass(frozen=True)
class Slot:
    local_date: date
    due_at: datetime  # aware UTC


def slots(
    weekdays: Iterable[str], at: time, zone: str, *, start: datetime, end: datetime
) -> Iterator[Slot]:
    """Every slot with start <= due_at < end, one per matching local date, in order."""
    wanted = set(weekdays)
    day = local_date(start, zone) - timedelta(days=1)
    last = local_date(end, zone) + timedelta(days=1)
    while day <= last:
        if WEEKDAYS[day.weekday()] in wanted:
            due = local_to_utc(day, at, zone)
            if start <= due < end:
                yield Slot(day, due)
        day += timedelta(days=1)



def at_local(day: date, at: time, zone: str) -> datetime:
    """`local_to_utc` under the name the date-based schedules use: wall time `at` on local date `day`."""
    return local_to_utc(day, at, zone)


def first_working_day(year: int, month: int) -> date:
    """The first Monday-to-Friday date of a month (public holidays are not known)."""
    day = date(year, month, 1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def month_start(day: date, months: int = 0) -> date:
    """The first day of `day`'s month, moved by `months` (negative: earlier)."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def local_day_window(first: date, last_exclusive: date, zone: str) -> tuple[datetime, datetime]:
    """The UTC instants [start of `first`, start of `last_exclusive`) in a zone."""
    return local_to_utc(first, time(0, 0), zone), local_to_utc(last_exclusive, time(0, 0), zone)


def days_between(planned: date, actual: date) -> int:
    """Days from `planned` to `actual`: negative when early, 0 on the day, positive when late."""
    return (actual - planned).days
