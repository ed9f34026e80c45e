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
from functools import lru_cache
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


# The time conversions are pure and cached: a planner converts the same few dates, times and zones for thousands
# of schedules (a zone's rules come with tzdata, which does not change while the process runs).
@lru_cache(maxsize=4096)
def local_to_utc(day: date, at: time, zone: str) -> datetime:
    """The UTC instant of wall time `at` on local date `day` (first instance when ambiguous,
    shifted past the gap when it does not exist)."""
    # fold=0: zoneinfo takes the first instance of a repeated wall time, and resolves a missing one with
    # the offset from before the gap, which lands after the gap.
    return datetime.combine(day, at, tzinfo=ZoneInfo(zone)).astimezone(UTC)


@lru_cache(maxsize=4096)
def local_date(moment: datetime, zone: str) -> date:
    return moment.astimezone(ZoneInfo(zone)).date()


@lru_cache(maxsize=4096)
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


@lru_cache(maxsize=1024)
def slots_between(weekdays: tuple[str, ...], at: time, zone: str, start: datetime, end: datetime) -> tuple[Slot, ...]:
    """`slots`, cached: in a planning pass most schedules share their days, time, zone and window."""
    return tuple(slots(weekdays, at, zone, start=start, end=end))



# -- cadences of rarer events (pulse surveys): every N weeks, or the Nth / last weekday of the month ----------
LAST = -1  # `Cadence.nth` for the last such weekday of the month
NTH_MAX = 4  # a fifth weekday exists only in some months: "last" covers the end of the month


@dataclass(frozen=True)
class Cadence:
    """Every `every_weeks` weeks on `weekday`, counted from the first such weekday on or after `anchor`; or,
    with `nth` set, monthly on the nth (1-4) or last (-1) such weekday."""

    weekday: str
    every_weeks: int | None = None
    anchor: date | None = None
    nth: int | None = None

    def __post_init__(self) -> None:
        if self.weekday not in WEEKDAYS:
            raise ValueError(f"'{self.weekday}' is not a weekday (use mon, tue, wed, thu, fri, sat, sun)")
        if self.nth is None:
            if self.every_weeks is None or not 1 <= self.every_weeks <= 52 or self.anchor is None:
                raise ValueError("every N weeks needs N from 1 to 52 and a start date")
        elif self.nth != LAST and not 1 <= self.nth <= NTH_MAX:
            raise ValueError("the week of the month is the first to the fourth, or the last")

    def dates(self, first: date, last: date) -> Iterator[date]:
        """Every date of the cadence with first <= date <= last, in order."""
        wd = WEEKDAYS.index(self.weekday)
        if self.nth is None:
            assert self.anchor is not None and self.every_weeks is not None
            start = self.anchor + timedelta(days=(wd - self.anchor.weekday()) % 7)
            step = timedelta(weeks=self.every_weeks)
            day = start if first <= start else start + step * -(-(first - start).days // step.days)
            while day <= last:
                yield day
                day += step
            return
        year, month = first.year, first.month
        while date(year, month, 1) <= last:
            day = nth_weekday(year, month, wd, self.nth)
            if first <= day <= last:
                yield day
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def nth_weekday(year: int, month: int, weekday: int, nth: int) -> date:
    """The nth (1-based) or last (`LAST`) `weekday` (0 = Monday) of a month."""
    if nth == LAST:
        nxt = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
        end = nxt - timedelta(days=1)
        return end - timedelta(days=(end.weekday() - weekday) % 7)
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (nth - 1))


@lru_cache(maxsize=1024)
def cadence_slots_between(cadence: Cadence, at: time, zone: str, start: datetime, end: datetime) -> tuple[Slot, ...]:
    """`cadence_slots`, cached: in a planning pass most schedules share their cadence, time, zone and window."""
    return tuple(cadence_slots(cadence, at, zone, start=start, end=end))


def cadence_slots(cadence: Cadence, at: time, zone: str, *, start: datetime, end: datetime) -> Iterator[Slot]:
    """Every slot of the cadence with start <= due_at < end, one per local date, in order (DST as `slots`)."""
    first = local_date(start, zone) - timedelta(days=1)
    last = local_date(end, zone) + timedelta(days=1)
    for day in cadence.dates(first, last):
        due = local_to_utc(day, at, zone)
        if start <= due < end:
            yield Slot(day, due)
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
