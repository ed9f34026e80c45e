"""SLA clocks of the issue log: pure time maths (no database, no Slack, no clock reads).

Every datetime in and out is timezone-aware UTC; `zone` is an IANA name ("Europe/Berlin"). A clock counts
either every minute (`hours=None`: elapsed real time) or only the partnership's working hours
(`WorkingHours`: some weekdays, a local opening and closing time). Working hours are wall-clock hours in the
zone, found per local date with services/recurrence.py's `local_to_utc`, so 09:00-17:00 stays 09:00-17:00 on
both sides of a DST change; what is counted inside them is real time (an opening that spans the change at
night counts the hour that really passed).

A clock (`SlaClock`) is a target plus the counted time used in earlier runs and the moment its current run
started. Pausing folds the current run into `consumed`; resuming starts a new run, so the time left is kept.
The escalation ladder (`ladder`) gives the moments the current run reaches 80 % (warn), 100 % (breach) and
200 % (escalate) of the target.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache
from types import MappingProxyType

from models.checkin import WEEKDAYS
from services.recurrence import local_date, local_to_utc, parse_local_time, parse_weekdays

ZERO = timedelta(0)
_WEEK = timedelta(days=7)


class Severity(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


SEVERITY_ORDER: tuple[Severity, ...] = (Severity.CRITICAL, Severity.HIGH, Severity.NORMAL, Severity.LOW)


@dataclass(frozen=True)
class Targets:
    acknowledge: timedelta
    resolve: timedelta


DEFAULT_TARGETS: Mapping[Severity, Targets] = MappingProxyType({
    Severity.CRITICAL: Targets(timedelta(hours=1), timedelta(days=1)),
    Severity.HIGH: Targets(timedelta(hours=4), timedelta(days=3)),
    Severity.NORMAL: Targets(timedelta(days=1), timedelta(days=7)),
    Severity.LOW: Targets(timedelta(days=3), timedelta(days=30)),
})


# -- working hours ----------------------------------------------------------------------------------------------
DASH = "\u2013"  # en dash, as in "Mon\u2013Fri 09:00\u201317:00"
HOURS_FORM = "days such as mon-fri or mon,tue,thu, and times as HH:MM, e.g. 09:00 to 17:00"


@dataclass(frozen=True)
class WorkingHours:
    days: frozenset[int] = frozenset(range(5))  # Monday = 0
    start: time = time(9, 0)
    end: time = time(17, 0)

    def __post_init__(self) -> None:
        if not self.days or not self.days <= frozenset(range(7)):
            raise ValueError(f"working days must be some of Monday (0) to Sunday (6), got {sorted(self.days)}")
        if self.end <= self.start:
            raise ValueError(f"working hours must end after they start ({HOURS_FORM})")

    def describe(self) -> str:
        """"Mon-Fri 09:00-17:00", "Mon, Tue, Thu 08:30-12:00", "Mon-Wed, Fri 09:00-17:00", written with
        en dashes."""
        runs: list[list[int]] = []
        for day in sorted(self.days):
            if runs and runs[-1][-1] == day - 1:
                runs[-1].append(day)
            else:
                runs.append([day])
        names = [WEEKDAYS[d].title() for d in range(7)]
        parts: list[str] = []
        for run in runs:
            if len(run) >= 3:
                parts.append(f"{names[run[0]]}{DASH}{names[run[-1]]}")
            else:
                parts.extend(names[d] for d in run)
        return f"{', '.join(parts)} {self.start:%H:%M}{DASH}{self.end:%H:%M}"

    @property
    def day_length(self) -> timedelta:
        """One working day of the targets: the opening's wall-clock length (8 h for 09:00-17:00)."""
        return (datetime.combine(date.min, self.end) - datetime.combine(date.min, self.start))


def parse_working_hours(days: str, start: str, end: str) -> WorkingHours:
    """("mon-fri" | "mon,tue,thu" | "weekdays", "09:00", "17:00") -> WorkingHours; ValueError naming the form."""
    try:
        names = parse_weekdays(days)
        opens, closes = parse_local_time(start), parse_local_time(end)
    except ValueError as e:
        raise ValueError(f"{e}; working hours need {HOURS_FORM}") from None
    if closes <= opens:
        raise ValueError(f"working hours must end after they start ({HOURS_FORM})")
    return WorkingHours(frozenset(WEEKDAYS.index(n) for n in names), opens, closes)


@dataclass(frozen=True)
class _Week:
    intervals: tuple[tuple[datetime, datetime], ...]  # [open, close) in UTC, in order
    total: timedelta


def _build_week(monday: date, zone: str, hours: WorkingHours) -> _Week:
    intervals = []
    for offset in sorted(hours.days):
        day = monday + timedelta(days=offset)
        opens, closes = local_to_utc(day, hours.start, zone), local_to_utc(day, hours.end, zone)
        if closes > opens:  # an opening inside a spring-forward gap can vanish
            intervals.append((opens, closes))
    return _Week(tuple(intervals), sum((c - o for o, c in intervals), ZERO))


@lru_cache(maxsize=256)
def _weeks(zone: str, hours: WorkingHours) -> dict[date, _Week]:
    """The working weeks of one zone and set of hours, by local Monday, filled as they are asked for (planners
    ask for the same few weeks over and over; a year adds 52 small entries)."""
    return {}


def _week(weeks: dict[date, _Week], monday: date, zone: str, hours: WorkingHours) -> _Week:
    week = weeks.get(monday)
    if week is None:
        week = weeks[monday] = _build_week(monday, zone, hours)
    return week


def _monday(moment: datetime, zone: str) -> date:
    day = local_date(moment, zone)
    return day - timedelta(days=day.weekday())


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (UTC)")
    return moment.astimezone(UTC)


def add_working(start: datetime, amount: timedelta, zone: str, hours: WorkingHours | None) -> datetime:
    """The moment when `amount` of counted time has passed after `start` (a start outside working hours counts
    from the next opening; a zero or negative amount gives `start`). With the default hours, Friday 16:00 + 4 h
    is Monday 12:00; an amount that ends exactly at a closing gives the closing, not the next opening."""
    start = _utc(start, "start")
    if amount <= ZERO:
        return start
    if hours is None:
        return start + amount
    remaining = amount
    monday, weeks = _monday(start, zone), _weeks(zone, hours)
    while True:
        week = _week(weeks, monday, zone, hours)
        if week.intervals and start < week.intervals[-1][1]:
            if start <= week.intervals[0][0] and remaining > week.total:
                remaining -= week.total
            else:
                for opens, closes in week.intervals:
                    opens = max(opens, start)
                    if closes <= opens:
                        continue
                    if remaining <= closes - opens:
                        return opens + remaining
                    remaining -= closes - opens
        monday += _WEEK


def working_between(a: datetime, b: datetime, zone: str, hours: WorkingHours | None) -> timedelta:
    """Counted time in [a, b) (zero when b <= a)."""
    a, b = _utc(a, "a"), _utc(b, "b")
    if b <= a:
        return ZERO
    if hours is None:
        return b - a
    total = ZERO
    monday, last, weeks = _monday(a, zone), _monday(b, zone), _weeks(zone, hours)
    while monday <= last:
        week = _week(weeks, monday, zone, hours)
        if week.intervals:
            if a <= week.intervals[0][0] and week.intervals[-1][1] <= b:
                total += week.total
            else:
                for opens, closes in week.intervals:
                    opens, closes = max(opens, a), min(closes, b)
                    if closes > opens:
                        total += closes - opens
        monday += _WEEK
    return total


# -- targets and time left as text --------------------------------------------------------------------------------
# As in Jira Service Management, the days and weeks of a target are counted in the clock's own calendar: with
# business hours, "1 day" is one working day (the opening's length, 8 h for 09:00-17:00) and "1 week" the working
# days of a week (5 such days for Mon-Fri); without, a day is 24 h and a week 7 days. Minutes and hours are
# always counted minutes and hours. A target is kept as counted time; `hours` is passed to read and to write it.
TARGET_FORM = "a duration such as 90m, 4h, 1 day or 2 days 4 hours"
TARGET_MAX_DAYS = 365
TARGET_MAX = timedelta(days=TARGET_MAX_DAYS)
_MINUTES = {"m": 1, "min": 1, "mins": 1, "minute": 1, "minutes": 1, "h": 60, "hr": 60, "hrs": 60, "hour": 60,
            "hours": 60}
_DAYS = {"d": 1, "day": 1, "days": 1, "w": 7, "wk": 7, "wks": 7, "week": 7, "weeks": 7}  # in days of 7 a week
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")
_FILLER = re.compile(r"[\s,]+|\band\b")
_DAY = timedelta(days=1)


def day_length(hours: WorkingHours | None) -> timedelta:
    """The length of "1 day" in a target: a working day with business hours, else 24 h."""
    return _DAY if hours is None else hours.day_length


def week_length(hours: WorkingHours | None) -> timedelta:
    """The length of "1 week" in a target: the working days of a week with business hours, else 7 days."""
    return _WEEK if hours is None else hours.day_length * len(hours.days)


def counted(amount: timedelta, hours: WorkingHours | None) -> timedelta:
    """A duration written in 24-hour days (the default targets: "1 day", "7 days") as counted time: each whole day
    is one day of `hours` (a working day with business hours), the rest counted as it is."""
    days, rest = divmod(amount, _DAY)
    return day_length(hours) * days + rest


def parse_target(text: str, hours: WorkingHours | None = None) -> timedelta:
    """"90m", "1h", "4 h", "1 day", "3d", "2 days 4 hours", "1.5 days" -> counted time (whole minutes, more than
    zero, at most 365 days); days and weeks are working days and weeks when `hours` is given (see above);
    ValueError saying the expected form."""
    cleaned = text.strip().lower()
    if cleaned.startswith("-"):
        raise ValueError(f"'{text.strip()}': a target must be more than zero (use {TARGET_FORM})")
    day = Fraction(int(day_length(hours).total_seconds()) // 60)
    week = Fraction(int(week_length(hours).total_seconds()) // 60)
    minutes = Fraction(0)
    pos = 0
    found = False
    for match in _PART.finditer(cleaned):
        unit = match.group(2)
        if _FILLER.sub("", cleaned[pos:match.start()]) or (unit not in _MINUTES and unit not in _DAYS):
            break
        number = Fraction(match.group(1))
        if unit in _MINUTES:
            minutes += number * _MINUTES[unit]
        else:
            minutes += number * (week if _DAYS[unit] == 7 else day)
        pos = match.end()
        found = True
    if not found or _FILLER.sub("", cleaned[pos:]):
        raise ValueError(f"'{text.strip()}' is not a target (use {TARGET_FORM})")
    if minutes.denominator != 1:
        raise ValueError(f"'{text.strip()}' is not a whole number of minutes (use {TARGET_FORM})")
    amount = timedelta(minutes=int(minutes))
    if amount <= ZERO:
        raise ValueError(f"'{text.strip()}': a target must be more than zero (use {TARGET_FORM})")
    if amount > day_length(hours) * TARGET_MAX_DAYS:
        raise ValueError(f"'{text.strip()}': a target can be at most {TARGET_MAX_DAYS} days")
    return amount


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def _split(amount: timedelta, hours: WorkingHours | None) -> tuple[int, int, int]:
    """(days, hours, minutes) of a whole number of minutes, with days of `hours` (see above)."""
    minutes = int(amount.total_seconds() // 60)
    days, rest = divmod(minutes, int(day_length(hours).total_seconds() // 60))
    return days, *divmod(rest, 60)


def format_target(amount: timedelta, hours: WorkingHours | None = None) -> str:
    """"1 h", "4 h", "1 day", "3 days", "1 day 4 h", "90 min", "2 h 30 min" (whole minutes; days are working days
    with `hours`; what it writes, `parse_target` with the same `hours` reads back)."""
    minutes = int(amount.total_seconds() // 60)
    if minutes < 120 and minutes % 60:
        return f"{minutes} min"
    days, hrs, mins = _split(amount, hours)
    parts = ([_days(days)] if days else []) + ([f"{hrs} h"] if hrs else []) + ([f"{mins} min"] if mins else [])
    return " ".join(parts) or "0 min"


def format_left(amount: timedelta, hours: WorkingHours | None = None) -> str:
    """"2 h 10 min left" / "3 h late" (negative = late), coarse: days and hours, hours and minutes, or minutes
    (days are working days with `hours`, as in the targets). Rounded up to the minute, so a clock is never "0 min
    left" before it is due nor "0 min late" after."""
    seconds = abs(amount.total_seconds())
    days, hrs, mins = _split(timedelta(minutes=int(-(-seconds // 60))), hours)
    if days:
        text = _days(days) + (f" {hrs} h" if hrs else "")
    elif hrs:
        text = f"{hrs} h" + (f" {mins} min" if mins else "")
    else:
        text = f"{mins} min"
    return f"{text} late" if amount < ZERO else f"{text} left"


# -- clocks -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SlaClock:
    target: timedelta
    consumed: timedelta = ZERO  # counted time used in earlier runs (before a pause)
    running_since: datetime | None = None  # None: paused or stopped
    stopped_at: datetime | None = None  # set when stopped for good (acknowledged / resolved)

    @classmethod
    def start(cls, target: timedelta, now: datetime) -> SlaClock:
        return cls(target=target, running_since=_utc(now, "now"))

    @property
    def running(self) -> bool:
        return self.running_since is not None and self.stopped_at is None

    @property
    def paused(self) -> bool:
        return self.running_since is None and self.stopped_at is None

    def _run(self, now: datetime, zone: str, hours: WorkingHours | None) -> timedelta:
        if not self.running:
            return ZERO
        assert self.running_since is not None
        return working_between(self.running_since, now, zone, hours)

    def pause(self, now: datetime, zone: str, hours: WorkingHours | None) -> SlaClock:
        """Fold the current run into `consumed` (no-op unless running)."""
        if not self.running:
            return self
        return SlaClock(self.target, self.consumed + self._run(now, zone, hours))

    def resume(self, now: datetime) -> SlaClock:
        """Start a new run with the time that was left (no-op unless paused)."""
        if not self.paused:
            return self
        return SlaClock(self.target, self.consumed, running_since=_utc(now, "now"))

    def stop(self, now: datetime, zone: str, hours: WorkingHours | None) -> SlaClock:
        """Stop for good (no-op when already stopped); a paused clock stops with what it had used."""
        if self.stopped_at is not None:
            return self
        return SlaClock(self.target, self.consumed + self._run(now, zone, hours), stopped_at=_utc(now, "now"))

    def with_target(self, target: timedelta, now: datetime, zone: str, hours: WorkingHours | None) -> SlaClock:
        """The clock measured against `target` from `now` (an issue's severity changed): a running clock keeps the
        time it used so far (its run is folded in at `now` and a new run starts), so it is due when what is left
        of the new target has been counted from `now`; a paused one keeps what it used and waits; a stopped one
        keeps its target, and so its met or missed result."""
        if self.stopped_at is not None:
            return self
        if not self.running:
            return SlaClock(target, self.consumed)
        return SlaClock(target, self.used(now, zone, hours), running_since=_utc(now, "now"))

    def used(self, now: datetime, zone: str, hours: WorkingHours | None) -> timedelta:
        return self.consumed + self._run(now, zone, hours)

    def reaches(self, fraction: float, zone: str, hours: WorkingHours | None) -> datetime | None:
        """When counted time reaches fraction * target on the current run; None unless running. If it was
        already reached before the last pause, the start of the current run."""
        if not self.running:
            return None
        assert self.running_since is not None
        rest = self.target * fraction - self.consumed
        if rest <= ZERO:
            return self.running_since
        return add_working(self.running_since, rest, zone, hours)

    def due_at(self, zone: str, hours: WorkingHours | None) -> datetime | None:
        return self.reaches(1.0, zone, hours)

    def left(self, now: datetime, zone: str, hours: WorkingHours | None) -> timedelta:
        """Target minus used (negative = late)."""
        return self.target - self.used(now, zone, hours)

    def met(self) -> bool | None:
        """Stopped within target? None while not stopped."""
        if self.stopped_at is None:
            return None
        return self.consumed <= self.target


class Level(StrEnum):
    WARN = "warn"
    BREACH = "breach"
    ESCALATE = "escalate"


LEVEL_FRACTION: Mapping[Level, float] = MappingProxyType({Level.WARN: 0.8, Level.BREACH: 1.0, Level.ESCALATE: 2.0})
LEVELS: tuple[Level, ...] = tuple(LEVEL_FRACTION)  # the ladder, bottom up


def ladder(clock: SlaClock, zone: str, hours: WorkingHours | None) -> list[tuple[Level, datetime]]:
    """The moments each level falls due on the current run, in ladder order (empty unless running)."""
    if not clock.running:
        return []
    steps = []
    for level, fraction in LEVEL_FRACTION.items():
        moment = clock.reaches(fraction, zone, hours)
        assert moment is not None
        steps.append((level, moment))
    return steps


# -- figures ------------------------------------------------------------------------------------------------------
STATUSES = ("open", "acknowledged", "waiting", "resolved")


@dataclass(frozen=True)
class IssueFacts:
    """One issue, for the figures."""

    severity: Severity
    status: str  # "open" | "acknowledged" | "waiting" | "resolved"
    created_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    acknowledged_in_time: bool | None  # None while the acknowledge clock runs
    resolved_in_time: bool | None
    # A clock not stopped yet (running or paused) that has already used more than its target: missed, whatever
    # happens next.
    acknowledge_overdue: bool = False
    resolve_overdue: bool = False


@dataclass(frozen=True)
class IssueFigures:
    """The figures of the issues logged in a window (the last `days` days)."""

    by_severity: Mapping[Severity, int]  # logged in the window
    by_status: Mapping[str, int]  # of those, by their status now
    mean_to_acknowledge: timedelta | None  # wall-clock, over issues in the window
    mean_to_resolve: timedelta | None
    acknowledged_in_time: float | None  # shares 0..1; None when nothing to count
    resolved_in_time: float | None
    counted: int


@dataclass(frozen=True)
class IssueCounts:
    """The issues as they stand now, whatever their age."""

    unresolved_by_severity: Mapping[Severity, int]
    by_status: Mapping[str, int]
    unresolved: int
    total: int


def _mean(values: list[timedelta]) -> timedelta | None:
    return sum(values, ZERO) / len(values) if values else None


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _outcome(in_time: bool | None, overdue: bool) -> bool | None:
    """A clock's SLA outcome: met or missed once stopped; missed already while it runs past its target; None
    (not counted yet) while it runs within it."""
    if in_time is not None:
        return in_time
    return False if overdue else None


def issue_figures(facts: Iterable[IssueFacts], now: datetime, days: int | None) -> IssueFigures:
    """Counts, mean times (elapsed time from logging) and SLA compliance over the issues created in the last
    `days` days (all when None). Compliance counts each clock stopped within its target as met, stopped after it
    or still running past it as missed; a clock still within its target is not counted yet. Every severity and
    the four statuses are present, with zero when none."""
    since = None if days is None else _utc(now, "now") - timedelta(days=days)
    chosen = [f for f in facts if since is None or f.created_at >= since]
    by_severity = {s: 0 for s in SEVERITY_ORDER}
    by_status = dict.fromkeys(STATUSES, 0)
    for f in chosen:
        by_severity[f.severity] += 1
        by_status[f.status] = by_status.get(f.status, 0) + 1
    acknowledged = [_outcome(f.acknowledged_in_time, f.acknowledge_overdue) for f in chosen]
    resolved = [_outcome(f.resolved_in_time, f.resolve_overdue) for f in chosen]
    return IssueFigures(
        by_severity=by_severity,
        by_status=by_status,
        mean_to_acknowledge=_mean([f.acknowledged_at - f.created_at for f in chosen if f.acknowledged_at]),
        mean_to_resolve=_mean([f.resolved_at - f.created_at for f in chosen if f.resolved_at]),
        acknowledged_in_time=_share([x for x in acknowledged if x is not None]),
        resolved_in_time=_share([x for x in resolved if x is not None]),
        counted=len(chosen),
    )


def issue_counts(facts: Iterable[IssueFacts]) -> IssueCounts:
    """The current state of every issue, whatever its age: the unresolved ones by severity, all by status."""
    by_severity = {s: 0 for s in SEVERITY_ORDER}
    by_status = dict.fromkeys(STATUSES, 0)
    total = 0
    for f in facts:
        total += 1
        by_status[f.status] = by_status.get(f.status, 0) + 1
        if f.status != "resolved":
            by_severity[f.severity] += 1
    return IssueCounts(unresolved_by_severity=by_severity, by_status=by_status,
                       unresolved=total - by_status["resolved"], total=total)
