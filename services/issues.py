"""The partnership issue log: anyone in a partnership logs a problem in seconds; every issue then has a number,
owners on both sides, a severity and two SLA clocks (acknowledge, resolve), and what stalls reaches the sponsors.

Everything Slack sees goes through the engine (services/scheduling.py), planned in the same transaction as the
change it shows:
- `issue_card`: the card in the channel, posted once and then updated in place after every change (the shared
  in-place refresh of polls: one key per issue, re-armed by each change, about one update a second). A card
  whose message was deleted is posted again.
- `issue_note`: one line in the card's thread per change ("<@U1> acknowledged #7"), and the ladder's notes.
- `issue_sla`: the ladder of each clock run: at 80 % of the target a private reminder to the issue's owners (the
  partnership's owners when it has none); at the target a thread note and direct messages to the issue's and the
  partnership's owners; at twice the target direct messages to the sponsors on both sides (a side without one:
  its owners, or the partner's contacts) and a thread note naming the sides. Keys carry the issue, the clock, the
  clock's run and the level, so each level fires once per run. One timer per issue is planned: the earliest next
  level of its running clocks (the issue records how far up the ladder each run is: `ack_reached`, `res_reached`);
  a level, when it runs, is skipped or fails for good, records itself and plans the next one in its completion. A
  change of state marks the pending ones obsolete and plans the current one at once. They are never skipped for
  lateness: after a restart they fire late, once, after re-checking that the clock runs (a missed 80 % reminder
  gives way to the breach).
- `issue_due`: the reminder the day before a due date and the overdue note the day after, at 09:00 local.
Direct messages are `notice` occurrences, so an archived channel stops none of them.

The clocks' arithmetic (targets, business hours, pauses, the ladder's moments, the figures) is services/sla.py.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from time import monotonic
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from adapters.slack import SlackError, SlackGateway
from blocks import ids
from blocks import issues as iblocks
from blocks.kit import section
from blocks.partnerships import side_words
from blocks.text import escape, mention
from models.checkin import CheckinAnswer, CheckinRound
from models.issue import (
    ESCALATION_NOTE_MAX,
    ISSUE_DESCRIPTION_MAX,
    ISSUE_TITLE_MAX,
    RESOLUTION_MAX,
    Issue,
    IssueEvent,
    IssueSlaSettings,
    IssueSource,
    IssueStatus,
)
from models.partnership import Partnership, PartnershipStatus, Side
from models.scheduling import Occurrence, OccurrenceState
from services.errors import Forbidden, Invalid, NotFound
from services.inputs import IssueInput, mentioned_users, slack_plain
from services.partnerships import Access, Escalated, Outcome, PartnershipFeature, check_access
from services.recurrence import end_of_local_day, local_date, local_to_utc
from services.scheduling import (
    ISSUE_CARD,
    ISSUE_DUE,
    ISSUE_NOTE,
    ISSUE_SLA,
    Completion,
    RunContext,
    insert_new,
    mark_obsolete,
    plan_notices,
    planning_rows,
    refresh_too_soon,
    request_refresh,
    request_refreshes,
    run_again,
    upsert_planned,
)
from services.sla import (
    DEFAULT_TARGETS,
    LEVEL_FRACTION,
    LEVELS,
    SEVERITY_ORDER,
    IssueCounts,
    IssueFacts,
    IssueFigures,
    Level,
    Severity,
    SlaClock,
    Targets,
    WorkingHours,
    counted,
    format_left,
    format_target,
    issue_counts,
    issue_figures,
    ladder,
    parse_target,
    parse_working_hours,
)

log = logging.getLogger(__name__)

Row = dict[str, Any]
NINE = time(9, 0)  # due-date reminders and overdue notes go out at 09:00 in the partnership's zone
# chat.update errors after which the card cannot be updated any more (message_not_found: it is posted again).
CARD_GONE = frozenset({"cant_update_message", "edit_window_closed", "is_archived", "channel_not_found",
                       "not_in_channel"})
CHANNEL_GONE = frozenset({"is_archived", "channel_not_found"})
FIGURE_WINDOWS = (30, 90)
LIST_FILTERS = ("open", "mine", "all", "critical")
UPSERT_BATCH = 500
CLOCKS = ("ack", "resolve")
ESCALATED = "escalated"  # the history's action of a manual escalation (its detail: clock, run, request)

_ISSUE: sa.Table = Issue.__table__  # type: ignore[attr-defined]
_P: sa.Table = Partnership.__table__  # type: ignore[attr-defined]
_SET: sa.Table = IssueSlaSettings.__table__  # type: ignore[attr-defined]
_OCC: sa.Table = Occurrence.__table__  # type: ignore[attr-defined]
# What the planner reads: the clock columns of every unresolved issue, with its partnership's status, zone and hours
# (no settings row: every hour counts). The partnership's status is read, not filtered on: a filter there lets
# SQLite start from the partnerships and sort every issue for each batch, instead of walking issues by id.
_PLANNED_ISSUES = (
    sa.select(_ISSUE.c.id, _ISSUE.c.status, _ISSUE.c.version, _ISSUE.c.due_date, _ISSUE.c.res_run,
              _ISSUE.c.ack_target_s, _ISSUE.c.ack_consumed_s, _ISSUE.c.ack_running_since, _ISSUE.c.ack_stopped_at,
              _ISSUE.c.res_target_s, _ISSUE.c.res_consumed_s, _ISSUE.c.res_running_since, _ISSUE.c.res_stopped_at,
              _ISSUE.c.ack_reached, _ISSUE.c.res_reached, _P.c.status.label("partnership_status"),
              _P.c.timezone.label("zone"), sa.func.coalesce(_SET.c.business_hours, False).label("business_hours"),
              _SET.c.days, _SET.c.start, _SET.c.end)
    .join_from(_ISSUE, _P, _P.c.id == _ISSUE.c.partnership_id)
    .outerjoin(_SET, _SET.c.partnership_id == _ISSUE.c.partnership_id)
    .where(_ISSUE.c.planned_version < _ISSUE.c.version, _ISSUE.c.status != IssueStatus.RESOLVED.value)
)
# An issue's thread line planned before this one (`id`) and not posted yet: it goes first.
_EARLIER_NOTE = (
    sa.select(_OCC.c.run_at)
    .where(_OCC.c.kind == ISSUE_NOTE, _OCC.c.subject_id == sa.bindparam("subject"), _OCC.c.id < sa.bindparam("id"),
           _OCC.c.state.in_([OccurrenceState.PENDING.value, OccurrenceState.CLAIMED.value]))
    .order_by(_OCC.c.run_at.desc())
    .limit(1)
)
NOTE_AFTER = timedelta(seconds=1)  # how long a thread line waits before looking again for an earlier one
ISSUE_PLAN_BATCH = 5000  # issues the planner plans per transaction (bounded memory and lock time for any N)


def _mark_planned(after: int, upto: int | None) -> sa.Update:
    """Every issue with `after` < id <= `upto` (no upper bound: None) is planned for its current version: the ones
    the batch planned, and the resolved ones and those of closed partnerships, which need no timers."""
    where = [_ISSUE.c.planned_version < _ISSUE.c.version, _ISSUE.c.id > after]
    if upto is not None:
        where.append(_ISSUE.c.id <= upto)
    return sa.update(_ISSUE).where(*where).values(planned_version=_ISSUE.c.version)


# What may be done to an issue in which status (the state machine); see `transition`.
ACTIONS: dict[str, frozenset[IssueStatus]] = {
    "acknowledge": frozenset({IssueStatus.OPEN}),
    "assign": frozenset({IssueStatus.OPEN, IssueStatus.ACKNOWLEDGED, IssueStatus.WAITING}),
    "wait": frozenset({IssueStatus.OPEN, IssueStatus.ACKNOWLEDGED}),
    "resume": frozenset({IssueStatus.WAITING}),
    "resolve": frozenset({IssueStatus.OPEN, IssueStatus.ACKNOWLEDGED, IssueStatus.WAITING}),
    "reopen": frozenset({IssueStatus.RESOLVED}),
    "escalate": frozenset({IssueStatus.OPEN, IssueStatus.ACKNOWLEDGED, IssueStatus.WAITING}),
    "edit": frozenset({IssueStatus.OPEN, IssueStatus.ACKNOWLEDGED, IssueStatus.WAITING}),
}
# The words of each action in messages: (what it does, what was done).
WORDS = {"acknowledge": ("acknowledge it", "acknowledged"), "assign": ("assign it", "assigned"),
         "wait": ("mark it waiting on the partner", "marked waiting on the partner"),
         "resume": ("resume it", "resumed"), "resolve": ("resolve it", "resolved"), "reopen": ("reopen it", "reopened"),
         "escalate": ("escalate it", "escalated"), "edit": ("edit it", "edited")}
# What the Edit form changes (owners: Assign; status: the other buttons), as the history records it.
EDITABLE = ("title", "description", "severity", "due_date")


# -- the clocks on an issue's columns ----------------------------------------------------------------------------
class IssueClocks(Protocol):
    """What the clocks and the timers read of an issue: an `Issue`, or the planner's Core row of its columns."""

    id: int | None
    status: str
    version: int
    due_date: date | None
    res_run: int
    ack_target_s: int
    ack_consumed_s: int
    ack_running_since: datetime | None
    ack_stopped_at: datetime | None
    res_target_s: int
    res_consumed_s: int
    res_running_since: datetime | None
    res_stopped_at: datetime | None
    ack_reached: int
    res_reached: int



def _seconds(amount: timedelta) -> int:
    return round(amount.total_seconds())


def ack_clock(i: IssueClocks) -> SlaClock:
    return SlaClock(timedelta(seconds=i.ack_target_s), timedelta(seconds=i.ack_consumed_s), i.ack_running_since,
                    i.ack_stopped_at)


def resolve_clock(i: IssueClocks) -> SlaClock:
    return SlaClock(timedelta(seconds=i.res_target_s), timedelta(seconds=i.res_consumed_s), i.res_running_since,
                    i.res_stopped_at)


def clock_of(i: IssueClocks, name: str) -> SlaClock:
    return ack_clock(i) if name == "ack" else resolve_clock(i)


def _set_ack(i: Issue, c: SlaClock) -> None:
    i.ack_target_s, i.ack_consumed_s = _seconds(c.target), _seconds(c.consumed)
    i.ack_running_since, i.ack_stopped_at = c.running_since, c.stopped_at


def _set_resolve(i: Issue, c: SlaClock) -> None:
    i.res_target_s, i.res_consumed_s = _seconds(c.target), _seconds(c.consumed)
    i.res_running_since, i.res_stopped_at = c.running_since, c.stopped_at


def run_of(i: IssueClocks, clock: str) -> int:
    return 1 if clock == "ack" else i.res_run


def reached_of(i: IssueClocks, clock: str) -> int:
    """How many levels of the clock's current run have been reached (0-3; `LEVELS[n]` is the next one)."""
    return i.ack_reached if clock == "ack" else i.res_reached


def transition(i: Issue, action: str, now: datetime, zone: str, hours: WorkingHours | None) -> None:
    """Apply `action` to the issue's status and clocks (the state machine). Acknowledging stops the acknowledge
    clock; waiting on the partner pauses the resolve clock (and, on an open issue, acknowledges it: someone
    answered); resuming restarts it with the time that was left; resolving stops both; reopening starts a new
    resolve clock (a new run). Raises Invalid when the status does not allow it."""
    if i.status not in ACTIONS[action]:
        raise Invalid(_not_now(i, action))
    if action in ("acknowledge", "wait", "resolve") and i.acknowledged_at is None:
        _set_ack(i, ack_clock(i).stop(now, zone, hours))
        i.acknowledged_at = now
        i.acknowledged_in_time = ack_clock(i).met()
    if action == "acknowledge":
        i.status = IssueStatus.ACKNOWLEDGED
    elif action == "wait":
        _set_resolve(i, resolve_clock(i).pause(now, zone, hours))
        i.status = IssueStatus.WAITING
    elif action == "resume":
        _set_resolve(i, resolve_clock(i).resume(now))
        i.status = IssueStatus.ACKNOWLEDGED
    elif action == "resolve":
        _set_resolve(i, resolve_clock(i).stop(now, zone, hours))
        i.status, i.resolved_at = IssueStatus.RESOLVED, now
        i.resolved_in_time = resolve_clock(i).met()
    elif action == "reopen":
        i.res_run, i.res_reached = i.res_run + 1, 0
        _set_resolve(i, SlaClock.start(timedelta(seconds=i.res_target_s), now))
        i.status, i.resolved_at, i.resolved_by, i.resolved_in_time = IssueStatus.ACKNOWLEDGED, None, None, None


def recount_from(i: Issue, now: datetime, zone: str, before: WorkingHours | None) -> None:
    """The partnership's hours change at `now`: each running clock keeps the time it used so far as counted under
    the hours `before`, and counts under the new ones from `now` on (paused and resumed at the change). Paused and
    stopped clocks keep what they had."""
    for name, setter in (("ack", _set_ack), ("resolve", _set_resolve)):
        c = clock_of(i, name)
        if c.running:
            setter(i, c.pause(now, zone, before).resume(now))


def retarget(i: Issue, targets: Targets, now: datetime, zone: str, hours: WorkingHours | None) -> None:
    """The issue's severity changed at `now`: each clock takes its new target (SlaClock.with_target: a running or
    paused clock keeps the time it used and is measured against the new target from now; a stopped one keeps its
    target and its result)."""
    _set_ack(i, ack_clock(i).with_target(targets.acknowledge, now, zone, hours))
    _set_resolve(i, resolve_clock(i).with_target(targets.resolve, now, zone, hours))


class Editable(Protocol):
    """What the Edit form shows and changes: an `Issue`, or an `IssueInput` as submitted."""

    title: str
    description: str
    severity: str
    due_date: date | None


def editable(x: Editable) -> dict[str, str | None]:
    """The Edit form's fields as the history records them (the due date as an ISO date, None when there is none)."""
    return {"title": x.title, "description": x.description, "severity": str(x.severity),
            "due_date": x.due_date.isoformat() if x.due_date else None}


def edit_marks(x: Editable) -> dict[str, str]:
    """A short fingerprint of each editable field: the form keeps those it opened with (its metadata cannot hold a
    whole description), so a submission changes only the fields the person changed, not ones someone else changed
    since the form opened."""
    return {k: hashlib.sha256(repr(v).encode()).hexdigest()[:12] for k, v in editable(x).items()}


def escalated_to(groups: list[Escalated]) -> str:
    """"<@U1> (our sponsor) and <@U2> (the partner's contact)"; a side with nobody to tell says so, and how to
    change it."""
    told = " and ".join(f"{', '.join(mention(u) for u in g.people)} ({g.label()})" for g in groups if g.people)
    missing = [g for g in groups if not g.people]
    if missing:
        sides = " and ".join(g.label() for g in missing)
        told = (f"{told}; " if told else "") + (f"{sides} to tell (an owner records a sponsor there with "
                                                f"`/partner add @person sponsor {missing[0].side.value}`)")
    return told


def _not_now(i: Issue, action: str) -> str:
    status = iblocks.STATUS_LABEL[i.status]
    if action == "reopen":
        return f"Issue #{i.number} is {status}, not resolved: there is nothing to reopen."
    if i.status == IssueStatus.RESOLVED:
        return (f"Issue #{i.number} is already resolved, so you cannot {WORDS[action][0]}. Reopen it first "
                "(the Reopen button on its card).")
    return f"Issue #{i.number} is {status}, so you cannot {WORDS[action][0]} now."


def next_level(i: IssueClocks, zone: str, hours: WorkingHours | None) -> Row | None:
    """The issue's SLA timer: of the next levels of its running clocks' ladders, the earliest (the acknowledge
    clock's on a tie), keyed by the issue, the clock, its run and the level; None when no clock runs or both are at
    the top of their ladders. One timer at a time is enough: every change of the clocks plans it again, and each
    level, when it is reached, plans the one after it."""
    issue_id = i.id
    if issue_id is None:
        return None
    found: tuple[datetime, str, int, int] | None = None
    for name, run, reached, clock in (
        ("ack", 1, i.ack_reached, (i.ack_target_s, i.ack_consumed_s, i.ack_running_since, i.ack_stopped_at)),
        ("resolve", i.res_run, i.res_reached, (i.res_target_s, i.res_consumed_s, i.res_running_since,
                                                i.res_stopped_at)),
    ):
        if reached < len(LEVELS) and (moments := _ladder(*clock, zone, hours)):  # running, below the top
            if found is None or moments[reached] < found[0]:
                found = (moments[reached], name, run, reached)
    if found is None:
        return None
    at, name, run, reached = found
    level = LEVELS[reached].value
    return {"key": f"{ISSUE_SLA}:{issue_id}:{name}:{run}:{level}", "kind": ISSUE_SLA, "subject_id": issue_id,
            "due_at": at, "revision": i.version, "payload": {"clock": name, "run": run, "level": level}}


def sla_rows(i: IssueClocks, zone: str, hours: WorkingHours | None) -> list[Row]:
    """The issue's timers: its SLA timer (`next_level`) and, with a due date and not resolved, the reminder the day
    before (runnable until the end of that day) and the overdue note the day after, at 09:00 local."""
    issue_id, version = i.id, i.version  # each column read once: a planner's Core rows read slowly by name
    if issue_id is None:
        return []
    rows: list[Row] = []
    if (sla := next_level(i, zone, hours)) is not None:
        rows.append(sla)
    due_date = i.due_date
    if due_date is not None and i.status != IssueStatus.RESOLVED:
        due = due_date.isoformat()
        before = due_date - timedelta(days=1)
        rows.append({"key": f"{ISSUE_DUE}:{issue_id}:{due}:remind", "kind": ISSUE_DUE, "subject_id": issue_id,
                     "due_at": local_to_utc(before, NINE, zone), "not_after": end_of_local_day(before, zone),
                     "revision": version, "payload": {"due": due, "what": "remind"}})
        rows.append({"key": f"{ISSUE_DUE}:{issue_id}:{due}:overdue", "kind": ISSUE_DUE, "subject_id": issue_id,
                     "due_at": local_to_utc(due_date + timedelta(days=1), NINE, zone), "revision": version,
                     "payload": {"due": due, "what": "overdue"}})
    return rows


@lru_cache(maxsize=4096)
def _ladder(target_s: int, consumed_s: int, running_since: datetime | None, stopped_at: datetime | None, zone: str,
            hours: WorkingHours | None) -> tuple[datetime, ...]:
    """The moments of `ladder` of a clock's columns, in `LEVELS` order, cached (pure time maths: a planning pass
    meets the same clocks again, and issues logged together share their moments)."""
    return tuple(at for _, at in ladder(
        SlaClock(timedelta(seconds=target_s), timedelta(seconds=consumed_s), running_since, stopped_at), zone, hours))


def clock_views(i: Issue, now: datetime, zone: str, hours: WorkingHours | None) -> list[iblocks.ClockView]:
    out = []
    for name in CLOCKS:
        c = clock_of(i, name)
        left = c.left(now, zone, hours)
        out.append(iblocks.ClockView(name=name, target=format_target(c.target, hours), due_at=c.due_at(zone, hours),
                                     left=format_left(left, hours), late=left <= timedelta(0), running=c.running,
                                     paused=c.paused, met=c.met()))
    return out


def figures_view(days: int, f: IssueFigures) -> iblocks.FiguresView:
    def mean(value: timedelta | None) -> str:
        return "n/a" if value is None else format_target(max(value, timedelta(minutes=1)))

    return iblocks.FiguresView(
        days=days, counted=f.counted, by_severity=[(sev.value, f.by_severity.get(sev, 0)) for sev in SEVERITY_ORDER],
        mean_to_acknowledge=mean(f.mean_to_acknowledge),
        mean_to_resolve=mean(f.mean_to_resolve), acknowledged_in_time=f.acknowledged_in_time,
        resolved_in_time=f.resolved_in_time)


def targets_rows(targets: dict[Severity, Targets], hours: WorkingHours | None) -> list[tuple[str, str, str]]:
    """(severity, acknowledge within, resolve within), most urgent first: for the SLA listing and form (days are
    working days with business hours)."""
    return [(sev.value, format_target(targets[sev].acknowledge, hours), format_target(targets[sev].resolve, hours))
            for sev in SEVERITY_ORDER]


SEVERITY_CHOICES = tuple(s.value for s in (Severity.LOW, Severity.NORMAL, Severity.HIGH, Severity.CRITICAL))


def sla_listing(name: str, settings: IssueSlaSettings | None) -> str:
    """The SLA targets as `/partner issue sla` and the saved form say them: per severity, with what the clocks
    count and, with business hours, how long a day of the targets is."""
    hours = hours_of(settings)
    return iblocks.sla_text(name, targets_rows(targets_of(settings), hours), hours.describe() if hours else None,
                            format_target(hours.day_length) if hours else None)


def _overdue(c: SlaClock, now: datetime, zone: str, hours: WorkingHours | None) -> bool:
    """Not stopped yet (running or paused) and already past its target."""
    return c.stopped_at is None and c.left(now, zone, hours) < timedelta(0)


def facts_of(i: Issue, now: datetime, zone: str, hours: WorkingHours | None) -> IssueFacts:
    return IssueFacts(severity=Severity(i.severity), status=i.status.value, created_at=i.created_at,
                      acknowledged_at=i.acknowledged_at, resolved_at=i.resolved_at,
                      acknowledged_in_time=i.acknowledged_in_time, resolved_in_time=i.resolved_in_time,
                      acknowledge_overdue=_overdue(ack_clock(i), now, zone, hours),
                      resolve_overdue=_overdue(resolve_clock(i), now, zone, hours))


def counts_view(c: IssueCounts) -> iblocks.CountsView:
    return iblocks.CountsView(
        unresolved=c.unresolved, total=c.total,
        unresolved_by_severity=[(sev.value, c.unresolved_by_severity.get(sev, 0)) for sev in SEVERITY_ORDER],
        by_status=list(c.by_status.items()))


def hours_of(settings: IssueSlaSettings | None) -> WorkingHours | None:
    if settings is None or not settings.business_hours:
        return None
    return parse_working_hours(settings.days, settings.start, settings.end)


def targets_of(settings: IssueSlaSettings | None) -> dict[Severity, Targets]:
    """The targets as counted time: the saved ones (parsed with the partnership's hours when saved), else the
    defaults, whose days are working days when the partnership counts business hours."""
    hours = hours_of(settings)
    targets = {sev: Targets(counted(t.acknowledge, hours), counted(t.resolve, hours))
               for sev, t in DEFAULT_TARGETS.items()}
    for name, pair in (settings.targets if settings is not None else {}).items():
        if name in Severity.__members__.values() and len(pair) == 2:
            targets[Severity(name)] = Targets(timedelta(seconds=pair[0]), timedelta(seconds=pair[1]))
    return targets


@dataclass
class IssueView:
    partnership: Partnership
    issue: Issue
    clocks: list[iblocks.ClockView]
    events: list[IssueEvent]


@dataclass
class SlaView:
    partnership: Partnership
    settings: IssueSlaSettings
    targets: list[tuple[str, str, str]]  # (severity, acknowledge within, resolve within), most urgent first
    text: str  # the listing (targets, what the clocks count)
    may_change: bool  # the person asking is an owner


@dataclass
class Prefill:
    """What the issue form opens with (a message, a check-in answer)."""

    partnership: Partnership
    title: str = ""
    description: str = ""
    reporter: str | None = None
    source: IssueSource = IssueSource.FORM
    source_link: str | None = None
    message_ts: str | None = None  # the message shortcut's message (its link is asked of Slack on submission)
    cut_from: int | None = None  # the text's whole length, when the description holds only its start


# The message shortcut asks Slack the names of at most this many people mentioned by id (one users.info call each,
# all at once, before the form opens: its trigger_id lives 3 s from the click); others keep their id.
MENTIONS_NAMED_MAX = 8
# ...and gives Slack this long for them, counted from the click, leaving the rest of the 3 s to open the form:
# a person not named by then keeps their id.
NAMES_WITHIN = 1.5


def _description(text: str) -> tuple[str, int | None]:
    """`text` within the description's limit, ending in "…" when cut, and its whole length when it was."""
    if len(text) <= ISSUE_DESCRIPTION_MAX:
        return text, None
    return text[:ISSUE_DESCRIPTION_MAX - 1].rstrip() + "…", len(text)


class IssueService(PartnershipFeature):
    names_within: float = NAMES_WITHIN  # seconds (tests of a slow Slack shorten it)

    # -- logging -----------------------------------------------------------------------------------------------
    def prepare_log(self, *, channel_id: str, actor: str) -> Partnership:
        """The partnership of this channel, when `actor` may log issues in it (anyone recorded, either side)."""
        return self.partnerships.require_member(channel_id, actor, "log issues").partnership

    def check_input(self, *, partnership_id: int, actor: str, inp: IssueInput) -> None:
        """What logging would refuse, before the form closes: who may, owners not on their side."""
        with self.uow(read_only=True) as s:
            p = s.get(Partnership, partnership_id)
            if p is None:
                raise NotFound("That partnership no longer exists.")
            self.partnerships.authorize(s, p, actor, "log issues")
            self._check_owners(s, p, inp.owner_ours, inp.owner_partner)
            self._check_due(p, inp.due_date, self.clock.now())

    def _check_due(self, p: Partnership, due: date | None, now: datetime) -> None:
        """A due date is today or later in the partnership's time zone (a past one would be overdue at once)."""
        today = local_date(now, p.timezone)
        if due is not None and due < today:
            problem = (f"{iblocks.day(due)} has passed (today is {iblocks.day(today)} in {p.timezone}): pick today "
                       "or a later day, or leave it empty.")
            raise Invalid(f"The due date {problem}", {"due_date": problem})

    def _check_owners(self, s: Session, p: Partnership, ours: str | None, partner: str | None) -> None:
        for user, side, field in ((ours, Side.OURS, "owner_ours"), (partner, Side.PARTNER, "owner_partner")):
            if user is None:
                continue
            recorded = self.partnerships.side_of(s, p.id or 0, user)
            if recorded != side:
                where = side_words(side)
                problem = (f"Only people recorded on {where} of the partnership can own it there; an owner adds "
                           "them with /partner add @person.")
                raise Invalid(f"{mention(user)} is not recorded on {where} of *{escape(p.name)}*. {problem}",
                              {field: problem})

    def log(
        self, *, partnership_id: int, actor: str, inp: IssueInput, creation_key: str,
        source: IssueSource = IssueSource.COMMAND, source_link: str | None = None, reporter: str | None = None,
    ) -> Outcome:
        """Log an issue (a repeated request with the same `creation_key` logs nothing more), start its clocks,
        plan its card and its timers."""
        now = self.clock.now()
        for attempt in range(2):
            try:
                with self.uow() as s:
                    p = s.get(Partnership, partnership_id, with_for_update=True)  # numbers one after the other
                    if p is None:
                        raise NotFound("That partnership no longer exists.")
                    self.partnerships.authorize(s, p, actor, "log issues")
                    same = s.exec(select(Issue).where(Issue.creation_key == creation_key[:128])).first()
                    if same is not None:
                        return Outcome(f":memo: Issue #{same.number} is logged.", partnership=p)
                    if not p.channel_id:
                        raise Invalid(f"*{escape(p.name)}* has no channel to post the issue in.")
                    self._check_owners(s, p, inp.owner_ours, inp.owner_partner)
                    self._check_due(p, inp.due_date, now)
                    number = (s.exec(select(func.max(Issue.number)).where(Issue.partnership_id == p.id)).one()
                              or 0) + 1
                    settings = s.get(IssueSlaSettings, p.id)
                    target = targets_of(settings)[inp.severity]
                    assert p.id is not None
                    i = Issue(
                        partnership_id=p.id, number=number, creation_key=creation_key[:128], title=inp.title,
                        description=inp.description, severity=inp.severity.value, reporter=reporter or actor,
                        owner_ours=inp.owner_ours, owner_partner=inp.owner_partner, due_date=inp.due_date,
                        source=source, source_link=source_link, channel_id=p.channel_id, created_at=now,
                        changed_at=now, ack_target_s=_seconds(target.acknowledge),
                        res_target_s=_seconds(target.resolve), ack_running_since=now, res_running_since=now,
                    )
                    s.add(i)
                    s.flush()
                    self._replan(s, i, p, hours_of(settings), now)
                    self._request_card(s, i, now)
                    self._event(s, i, p, actor, "logged", severity=i.severity, source=source.value,
                                reporter=i.reporter, owner_ours=i.owner_ours, owner_partner=i.owner_partner)
                    line = f"#{number} *{escape(i.title)}* ({i.severity})"
                break
            except IntegrityError:  # the same request twice at once: the second finds the first
                if attempt:
                    raise
        self.wake()
        return Outcome(f":memo: Logged issue {line}; its card is being posted in <#{p.channel_id}>.", partnership=p)

    def prefill_from_answer(self, *, answer_id: int, question: int, actor: str) -> Prefill:
        """The form's contents for a check-in answer's "Log as issue" button: the answer's first line as title,
        the question and the answer as description, the answer's author as reporter. Only people recorded in the
        answer's partnership may."""
        with self.uow(read_only=True) as s:
            a = s.get(CheckinAnswer, answer_id) if answer_id else None
            r = s.get(CheckinRound, a.round_id) if a is not None else None
            p = s.get(Partnership, r.partnership_id) if r is not None else None
            if a is None or r is None or p is None or not 0 <= question < min(len(r.questions), len(a.answers)):
                raise NotFound("That check-in answer no longer exists.")
            self.partnerships.authorize(s, p, actor, "log issues")
            text = a.answers[question].strip()
            if not text:
                raise Invalid("That answer is empty: there is nothing to log.")
            title = text.splitlines()[0].strip()
            description, cut_from = _description(f"{r.questions[question]}\n{text}")
            return Prefill(p, title=title[:ISSUE_TITLE_MAX], description=description, reporter=a.user_id,
                           source=IssueSource.CHECKIN, cut_from=cut_from)

    def prefill_from_message(self, *, channel_id: str, actor: str, text: str, message_ts: str | None,
                             clicked_at: float | None = None) -> Prefill:
        """The form's contents for the message shortcut, in a partnership channel only. `text` is the message as
        Slack sends it: mentions become readable (a person mentioned by id gets their Slack name, a channel its
        name, a link its text; see services.inputs.slack_plain); a message over the description's limit is cut
        with "…" and `cut_from` says how long it was (the issue keeps the link to the whole message). Slack is
        given `names_within` seconds from `clicked_at` (a `time.monotonic()` value; default: now) for the names:
        a person it has not named by then keeps their id (`@U…`)."""
        deadline = (monotonic() if clicked_at is None else clicked_at) + self.names_within
        detail = self.partnerships.by_channel(channel_id)
        if detail is None or detail.partnership.status != PartnershipStatus.ACTIVE:
            raise NotFound("This message is not in a partnership channel: issues are logged in a partnership's "
                           "#partner-… channel (see `/partner list` for yours).")
        p = detail.partnership
        self.partnerships.require_member(channel_id, actor, "log issues")
        readable = slack_plain(text, self.partnerships.names(mentioned_users(text)[:MENTIONS_NAMED_MAX],
                                                             deadline=deadline))
        first = next((line.strip() for line in readable.splitlines() if line.strip()), "")
        description, cut_from = _description(readable)
        return Prefill(p, title=first[:ISSUE_TITLE_MAX], description=description, source=IssueSource.SHORTCUT,
                       message_ts=message_ts, cut_from=cut_from)

    # -- finding and showing -----------------------------------------------------------------------------------------
    def find(self, *, channel_id: str, actor: str, ref: str) -> int:
        """The id of issue `ref` (`7` or `#7`) of this channel's partnership."""
        p = self.partnerships.require(channel_id, actor, "see its issues", open_only=False).partnership
        number = ref.strip().removeprefix("#")
        if not number.isdigit() or len(number) > 8:
            raise Invalid("Give the issue's number, e.g. `/partner issue 7` (`/partner issues` lists them).")
        with self.uow(read_only=True) as s:
            i = s.exec(select(Issue).where(Issue.partnership_id == p.id, Issue.number == int(number))).first()
            if i is None or i.id is None:
                raise NotFound(f"*{escape(p.name)}* has no issue #{int(number)}. `/partner issues all` lists them.")
            return i.id

    def view(self, *, issue_id: int, actor: str) -> IssueView:
        now = self.clock.now()
        with self.uow(read_only=True) as s:
            i, p = self._load(s, issue_id)
            self.partnerships.authorize(s, p, actor, "see its issues", open_only=False)
            events = list(s.exec(select(IssueEvent).where(IssueEvent.issue_id == i.id)
                                 .order_by(col(IssueEvent.id))).all())
            hours = hours_of(s.get(IssueSlaSettings, p.id))
            return IssueView(p, i, clock_views(i, now, p.timezone, hours), events)

    def for_action(self, *, issue_id: int, actor: str, action: str, channel_id: str | None = None) -> Issue:
        """The issue, when `actor` may do `action` to it now (before a form opens: Assign, Resolve, Escalate)."""
        with self.uow(read_only=True) as s:
            i, p = self._load(s, issue_id)
            self._check_channel(i, p, channel_id)
            self._authorize(s, p, i, actor, action)
            if i.status not in ACTIONS[action]:
                raise Invalid(_not_now(i, action))
            return i

    # -- changes -----------------------------------------------------------------------------------------------------
    def acknowledge(self, *, issue_id: int, actor: str, channel_id: str | None = None) -> Outcome:
        return self._change(issue_id, actor, "acknowledge", channel_id)

    def wait(self, *, issue_id: int, actor: str, channel_id: str | None = None) -> Outcome:
        return self._change(issue_id, actor, "wait", channel_id)

    def resume(self, *, issue_id: int, actor: str, channel_id: str | None = None) -> Outcome:
        return self._change(issue_id, actor, "resume", channel_id)

    def reopen(self, *, issue_id: int, actor: str, channel_id: str | None = None) -> Outcome:
        return self._change(issue_id, actor, "reopen", channel_id)

    def check_note(self, note: str, *, limit: int, field: str, required: bool) -> str:
        text = (note or "").strip()
        if required and not text:
            raise Invalid("Write what was done: the note is posted in the card's thread.",
                          {field: "Write what was done."})
        if len(text) > limit:
            raise Invalid(f"The note is {len(text)} characters long; the limit is {limit}.",
                          {field: f"{len(text)} characters; the limit is {limit}."})
        return text

    def resolve(self, *, issue_id: int, actor: str, note: str, channel_id: str | None = None) -> Outcome:
        text = self.check_note(note, limit=RESOLUTION_MAX, field="note", required=True)
        return self._change(issue_id, actor, "resolve", channel_id, note=text)

    def escalate(self, *, issue_id: int, actor: str, note: str = "", channel_id: str | None = None,
                 request_key: str | None = None) -> Outcome:
        """Tell the sponsors now; the same request again (`request_key`: the form's view id) escalates nothing
        more."""
        text = self.check_note(note, limit=ESCALATION_NOTE_MAX, field="note", required=False)
        with self.uow(read_only=True) as s:  # the card's link, asked of Slack before the transaction
            i, _ = self._load(s, issue_id)
        return self._change(issue_id, actor, "escalate", channel_id, note=text, link=self._link(i),
                            request_key=request_key)

    def assign(self, *, issue_id: int, actor: str, owner_ours: str | None, owner_partner: str | None,
               channel_id: str | None = None) -> Outcome:
        return self._change(issue_id, actor, "assign", channel_id, owners=(owner_ours, owner_partner))

    def check_assign(self, *, issue_id: int, actor: str, owner_ours: str | None, owner_partner: str | None) -> None:
        """What `assign` would refuse, before the form closes: who may, a resolved issue, owners not on their side."""
        with self.uow(read_only=True) as s:
            i, p = self._load(s, issue_id)
            self._authorize(s, p, i, actor, "assign")
            if i.status not in ACTIONS["assign"]:
                raise Invalid(_not_now(i, "assign"))
            self._check_owners(s, p, owner_ours, owner_partner)

    def edit(self, *, issue_id: int, actor: str, inp: IssueInput, channel_id: str | None = None,
             fields: Collection[str] | None = None) -> Outcome:
        """Change the title, description, severity or due date (`inp`'s owners are not read: Assign changes them).
        `fields`: the ones the person changed in the form (None: all of EDITABLE); only those that differ from
        the issue now are changed, so the same form sent again changes nothing more. A new severity re-targets the
        clocks; a new due date re-plans the reminders."""
        return self._change(issue_id, actor, "edit", channel_id, edit=(inp, fields))

    def check_edit(self, *, issue_id: int, actor: str, inp: IssueInput,
                   fields: Collection[str] | None = None) -> None:
        """What `edit` would refuse, before the form closes: who may, a resolved issue, a due date that passed."""
        with self.uow(read_only=True) as s:
            i, p = self._load(s, issue_id)
            self._authorize(s, p, i, actor, "edit")
            if i.status not in ACTIONS["edit"]:
                raise Invalid(_not_now(i, "edit"))
            self._edits(i, p, inp, fields, self.clock.now())

    def _edits(self, i: Issue, p: Partnership, inp: IssueInput, fields: Collection[str] | None,
               now: datetime) -> dict[str, list[str | None]]:
        """The fields to change, as {field: [old, new]}; a new due date must not have passed (an unchanged one
        may: an overdue issue keeps its date while its title is corrected)."""
        old, new = editable(i), editable(inp)
        changes = {f: [old[f], new[f]] for f in EDITABLE if (fields is None or f in fields) and old[f] != new[f]}
        if "due_date" in changes:
            self._check_due(p, inp.due_date, now)
        return changes

    def _change(
        self, issue_id: int, actor: str, action: str, channel_id: str | None, *, note: str = "",
        owners: tuple[str | None, str | None] | None = None, link: str | None = None, request_key: str | None = None,
        edit: tuple[IssueInput, Collection[str] | None] | None = None,
    ) -> Outcome:
        now = self.clock.now()
        with self.uow() as s:
            # The card's update first, then the issue's row: the card's completion takes them in that order too
            # (it records the card's ts on the issue), so the two never wait for each other on PostgreSQL. Its
            # executor spaces updates itself (refresh_too_soon).
            request_refresh(s, kind=ISSUE_CARD, subject_id=issue_id, refreshed_at=None, now=now)
            i, p = self._load(s, issue_id, lock=True)
            self._check_channel(i, p, channel_id)
            self._authorize(s, p, i, actor, action)
            settings = s.get(IssueSlaSettings, p.id)
            hours = hours_of(settings)
            detail: dict[str, Any] = {}
            extra = told = ""
            if action == "assign":
                assert owners is not None
                self._check_owners(s, p, *owners)
                if i.status not in ACTIONS[action]:
                    raise Invalid(_not_now(i, action))
                if (i.owner_ours, i.owner_partner) == owners:
                    return Outcome(f"Issue #{i.number} has these owners already.", partnership=p)
                i.owner_ours, i.owner_partner = owners
                detail = {"owner_ours": i.owner_ours, "owner_partner": i.owner_partner}
                extra = iblocks.owners_text(i)
            elif action == "escalate":
                if i.status not in ACTIONS[action]:
                    raise Invalid(_not_now(i, action))
                if request_key and any(d.get("request") == request_key for d in self._manual_escalations(s, i)):
                    return Outcome(f"Issue #{i.number} is escalated: its sponsors are told.", partnership=p)
                i.escalations += 1
                i.escalated_at = now
                why = f"escalated by {mention(actor)}" + (f": “{escape(note)}”" if note else ".")
                people, told = self._escalation_dms(s, i, p, f"{ISSUE_SLA}:{i.id}:manual:{i.escalations}", why, link,
                                                    now, note=False)
                # The clock the issue waits on (acknowledge while open, else resolve) and its run: that run's
                # automatic escalation is not sent again; other clocks and later runs keep theirs.
                clock = "ack" if i.status == IssueStatus.OPEN else "resolve"
                detail = {"note": note, "to": people, "clock": clock, "run": run_of(i, clock),
                          "request": request_key}
                extra = f"to {told}" + (f": {escape(note)}" if note else "")
            elif action == "edit":
                assert edit is not None
                if i.status not in ACTIONS[action]:
                    raise Invalid(_not_now(i, action))
                changes = self._edits(i, p, *edit, now)
                if not changes:
                    return Outcome(f"Issue #{i.number} already reads like that: nothing to change.", partnership=p)
                inp = edit[0]
                for name in ("title", "description"):
                    if name in changes:
                        setattr(i, name, getattr(inp, name))
                if "due_date" in changes:
                    i.due_date = inp.due_date
                if "severity" in changes:
                    i.severity = inp.severity.value
                    retarget(i, targets_of(settings)[inp.severity], now, p.timezone, hours)
                detail = {"changes": changes}
                extra = iblocks.changes_text(changes)
            else:
                transition(i, action, now, p.timezone, hours)
                if i.acknowledged_at is not None and i.acknowledged_by is None:
                    i.acknowledged_by = actor  # acknowledging, or waiting on or resolving an open issue
                if action == "resolve":
                    i.resolved_by, i.resolution = actor, note
                    detail, extra = {"note": note}, escape(note)
            i.version += 1
            i.changed_at = now
            s.add(i)
            s.flush()
            self._replan(s, i, p, hours, now)
            self._event(s, i, p, actor, WORDS[action][1].replace(" ", "_")[:32], **detail)
            line = (f"{mention(actor)} escalated #{i.number} {extra}" if action == "escalate"
                    else iblocks.note_text(actor, "changed" if action == "edit" else WORDS[action][1], i, extra))
            self._note(s, i, f"{action}:{i.version}", line, now)
            number, title = i.number, i.title
        self.wake()
        if action == "edit":
            return Outcome(f":white_check_mark: Changed issue #{number} *{escape(title)}*: {extra}; the card shows it.",
                           partnership=p)
        done = f"told now: {told}" if action == "escalate" else "the card shows it"
        return Outcome(f":white_check_mark: Issue #{number} *{escape(title)}* is {WORDS[action][1]}; {done}.",
                       partnership=p)

    # -- lists and figures -------------------------------------------------------------------------------------------
    def listing(self, *, channel_id: str, actor: str, which: str) -> tuple[Partnership, list[tuple[Issue, str]], str]:
        """The issues of this channel's partnership for `/partner issues [open|mine|all|critical]`, most severe
        first, then oldest; each with its SLA state."""
        which = (which or "open").strip().lower()
        if which not in LIST_FILTERS:
            raise Invalid(f"`{escape(which[:20])}` is not a list: use `/partner issues` with one of "
                          f"{', '.join(LIST_FILTERS)} (or `stats`).")
        p = self.partnerships.require(channel_id, actor, "see its issues", open_only=False).partnership
        now = self.clock.now()
        with self.uow(read_only=True) as s:
            query = select(Issue).where(Issue.partnership_id == p.id)
            if which != "all":
                query = query.where(Issue.status != IssueStatus.RESOLVED)
            if which == "critical":
                query = query.where(Issue.severity == Severity.CRITICAL.value)
            rows = list(s.exec(query).all())
            hours = hours_of(s.get(IssueSlaSettings, p.id))
        if which == "mine":
            rows = [i for i in rows if actor in (i.owner_ours, i.owner_partner, i.reporter)]
        order = {sev.value: n for n, sev in enumerate(SEVERITY_ORDER)}
        rows.sort(key=lambda i: (order.get(i.severity, 9), i.created_at))
        return p, [(i, self._sla_state(i, now, p.timezone, hours)) for i in rows], which

    def _sla_state(self, i: Issue, now: datetime, zone: str, hours: WorkingHours | None) -> str:
        if i.status == IssueStatus.RESOLVED:
            return "resolved " + ("within target" if i.resolved_in_time else "late")
        name = "ack" if i.status == IssueStatus.OPEN else "resolve"
        c = clock_of(i, name)
        verb = "acknowledge" if name == "ack" else "resolve"
        if c.paused:
            return f"{verb}: paused"
        return f"{verb}: {format_left(c.left(now, zone, hours), hours)}"

    def link(self, i: Issue) -> str | None:
        return self._link(i)

    def stats(self, *, channel_id: str, actor: str) -> tuple[Partnership, iblocks.CountsView,
                                                             list[iblocks.FiguresView]]:
        """`/partner issues stats`: every issue as it stands now (whatever its age), then the figures of the issues
        logged in the last 30 and 90 days (a clock still running past its target counts as missed)."""
        p = self.partnerships.require(channel_id, actor, "see its issue figures", open_only=False).partnership
        now = self.clock.now()
        with self.uow(read_only=True) as s:
            hours = hours_of(s.get(IssueSlaSettings, p.id))
            facts = [facts_of(i, now, p.timezone, hours)
                     for i in s.exec(select(Issue).where(Issue.partnership_id == p.id)).all()]
        return (p, counts_view(issue_counts(facts)),
                [figures_view(days, issue_figures(facts, now, days)) for days in FIGURE_WINDOWS])

    # -- SLA settings ------------------------------------------------------------------------------------------------
    def sla(self, *, channel_id: str, actor: str) -> SlaView:
        """The SLA targets of this channel's partnership (anyone in it), and whether `actor` may change them."""
        detail = self.partnerships.require(channel_id, actor, "see its SLA targets")
        p = detail.partnership
        try:
            check_access(p, detail.members, actor, "change its SLA targets", need=Access.OWNER)
            may_change = True
        except Forbidden:
            may_change = False
        with self.uow(read_only=True) as s:
            settings = s.get(IssueSlaSettings, p.id) or IssueSlaSettings(partnership_id=p.id or 0)
        hours = hours_of(settings)
        return SlaView(p, settings, targets_rows(targets_of(settings), hours), sla_listing(p.name, settings),
                       may_change)

    def prepare_sla_form(self, *, partnership_id: int, actor: str) -> tuple[Partnership, IssueSlaSettings,
                                                                             dict[Severity, Targets]]:
        p = self.partnerships.require_owner_by_id(partnership_id, actor, "change its SLA targets").partnership
        with self.uow(read_only=True) as s:
            settings = s.get(IssueSlaSettings, p.id) or IssueSlaSettings(partnership_id=p.id or 0)
            return p, settings, targets_of(settings)

    def parse_sla(self, raw: dict[str, tuple[str, str]], business_hours: bool, days: str, start: str,
                  end: str) -> tuple[dict[str, list[int]], WorkingHours]:
        """The form's targets (severity -> (acknowledge, resolve) as typed) as counted seconds, and the hours;
        Invalid under the inputs. With business hours, the days and weeks typed are working days and weeks."""
        targets: dict[str, list[int]] = {}
        errors: dict[str, str] = {}
        try:
            hours = parse_working_hours(days, start, end)
        except ValueError as exc:
            errors[ids.F_SLA_DAYS] = str(exc)
            hours = WorkingHours()
        counting = hours if business_hours else None
        for sev in SEVERITY_ORDER:
            ack_text, res_text = raw.get(sev.value, ("", ""))
            pair = []
            for text, field in ((ack_text, f"{ids.F_SLA_ACK}_{sev.value}"),
                                (res_text, f"{ids.F_SLA_RESOLVE}_{sev.value}")):
                try:
                    pair.append(_seconds(parse_target(text, counting)))
                except ValueError as exc:
                    errors[field] = str(exc)
            if len(pair) == 2:
                if pair[0] > pair[1]:
                    errors[f"{ids.F_SLA_ACK}_{sev.value}"] = "Acknowledging cannot take longer than resolving."
                targets[sev.value] = pair
        if errors:
            raise Invalid("Some targets are not right: " + " ".join(escape(e) for e in errors.values()), errors)
        return targets, hours

    def save_sla(self, *, partnership_id: int, actor: str, targets: dict[str, list[int]], business_hours: bool,
                 days: str, start: str, end: str) -> Outcome:
        """Owners change the targets (for issues logged from now on) and whether clocks count business hours only
        (and which). A change of hours applies to running clocks from now on: the time they used so far stays as
        it was counted under the old hours (each is paused and resumed at the change), their timers are planned
        again at once, and the cards of the unresolved issues are updated (their "resolve by" moves)."""
        now = self.clock.now()
        with self.uow() as s:
            # One save at a time, and none while an issue is being logged (its FOR UPDATE); but not FOR UPDATE itself:
            # a button's or a level's history row refers to the partnership (a KEY SHARE lock on PostgreSQL), and
            # such a change holds its card's row, which this save asks for below.
            p = s.get(Partnership, partnership_id, with_for_update={"key_share": True})
            if p is None:
                raise NotFound("That partnership no longer exists.")
            self.partnerships.authorize(s, p, actor, "change its SLA targets", need=Access.OWNER)
            settings = s.get(IssueSlaSettings, partnership_id) or IssueSlaSettings(partnership_id=partnership_id)
            before = hours_of(settings)
            settings.targets, settings.business_hours = targets, business_hours
            settings.days, settings.start, settings.end = days, start, end
            settings.updated_by, settings.updated_at = actor, now
            s.add(settings)
            s.flush()
            hours = hours_of(settings)
            # The cards' updates first, then the issues' rows, locked and read afresh: the order of `_change` and of
            # a level's completion (the other way round, a button clicked meanwhile deadlocks with this on
            # PostgreSQL), and the clocks as that button left them (not as they were before it: its change would be
            # written over).
            cards = s.exec(select(Issue.id, Issue.card_refreshed_at).where(
                Issue.partnership_id == partnership_id, Issue.status != IssueStatus.RESOLVED)).all()
            request_refreshes(s, kind=ISSUE_CARD, subjects=[(issue_id or 0, at) for issue_id, at in cards], now=now)
            unresolved = s.exec(select(Issue).where(col(Issue.id).in_([issue_id for issue_id, _ in cards]),
                                                    Issue.status != IssueStatus.RESOLVED)
                                .order_by(col(Issue.id)).with_for_update()
                                .execution_options(populate_existing=True)).all()
            for i in unresolved:
                if hours != before:
                    recount_from(i, now, p.timezone, before)
                i.version += 1
                s.add(i)
                s.flush()
                self._replan(s, i, p, hours, now)
            self.partnerships.audit(s, p, actor, "issue_sla_changed", targets=targets, business_hours=business_hours,
                                    days=days, start=start, end=end)
            text = sla_listing(p.name, settings)
        self.wake()
        return Outcome(f":white_check_mark: Saved. {text}\nNew targets apply to issues logged from now on.",
                       partnership=p)

    # -- scheduled work ----------------------------------------------------------------------------------------------
    def plan(self, now: datetime | None = None) -> int:
        """Plan the timers of the unresolved issues of open partnerships whose current version is not planned yet
        (every change plans its issue's timers in its own transaction and records it in `planned_version`, so
        this is a safety net: normally one query that finds nothing; after an upgrade, or a crash between a change
        and its planning, it plans them). In batches of `ISSUE_PLAN_BATCH` issues by id, a transaction each: one
        query reads a batch's clock columns with their partnership's zone and hours (Core rows), one statement
        writes its rows and one records the versions as planned. Returns the rows written."""
        now = now or self.clock.now()
        hours: dict[tuple[Any, ...], WorkingHours | None] = {}
        written, after = 0, 0
        while True:
            with self.uow() as s:
                conn = s.connection()
                batch = list(planning_rows(conn, _PLANNED_ISSUES.where(_ISSUE.c.id > after).order_by(_ISSUE.c.id)
                                           .limit(ISSUE_PLAN_BATCH)))
                if not batch:  # after full batches: the issues past them need no timers
                    if after:
                        conn.execute(_mark_planned(after, None))
                    return written
                rows: list[Row] = []
                for i in batch:
                    if i.partnership_status != PartnershipStatus.ACTIVE.value:
                        continue  # a closed partnership's issues need no timers
                    rule = (i.business_hours, i.days, i.start, i.end)
                    if rule not in hours:
                        hours[rule] = parse_working_hours(i.days, i.start, i.end) if i.business_hours else None
                    rows += [r for r in sla_rows(i, i.zone, hours[rule])
                             if r.get("not_after") is None or r["not_after"] > now]
                upsert_planned(s, rows, now)  # nearly every row is new: no reading first (newer plans stay)
                last = len(batch) < ISSUE_PLAN_BATCH
                conn.execute(_mark_planned(after, None if last else batch[-1].id))
                written += len(rows)
            if last:
                return written
            after = batch[-1].id

    def run_card(self, occ: Occurrence, ctx: RunContext) -> Completion:
        """Post the card, or update it in place with the issue as it is now; a deleted card is posted again."""
        with self.uow(read_only=True) as s:
            i = s.get(Issue, occ.subject_id)
            p = s.get(Partnership, i.partnership_id) if i is not None else None
            if i is None or p is None:
                return Completion.obsolete("the issue no longer exists")
            if i.message_ts and (later := refresh_too_soon(occ, i.card_refreshed_at, ctx.now)) is not None:
                return later
            hours = hours_of(s.get(IssueSlaSettings, p.id))
            text = iblocks.card_text(i)
            blocks = iblocks.card_blocks(i, p.name, clock_views(i, ctx.now, p.timezone, hours), now=ctx.now)
        issue_id = i.id
        if i.message_ts:
            try:
                ctx.slack.update(i.channel_id, i.message_ts, text=text, blocks=blocks)
                return Completion.done(i.channel_id, i.message_ts,
                                       apply=lambda s: self._record_card(s, issue_id, None, ctx.now))
            except SlackError as exc:
                if exc.code in CARD_GONE:
                    return Completion.obsolete(f"the card cannot be updated: {exc.code}")
                if exc.code != "message_not_found":
                    raise  # retried; the issue is saved and the next update shows it
                log.info("the card of issue %s was deleted: posting it again", issue_id)
        channel, ts = ctx.post(i.channel_id, text=text, blocks=blocks)
        return Completion.done(channel, ts, apply=lambda s: self._record_card(s, issue_id, ts, ctx.now))

    def _record_card(self, s: Session, issue_id: int | None, ts: str | None, at: datetime) -> None:
        """Inside the fenced completion: the card's ts (when posted) and when it was last updated."""
        i = s.get(Issue, issue_id)
        if i is not None:
            if ts is not None:
                i.message_ts = ts
            i.card_refreshed_at = at
            s.add(i)

    def run_note(self, occ: Occurrence, ctx: RunContext) -> Completion:
        """One line in the card's thread (waits, retrying, while the card is not posted yet), after the issue's
        earlier lines: one planned before it and not posted yet goes first, so the thread reads in the order
        things happened, also when several are due at once (they are dispatched in parallel)."""
        with self.uow(read_only=True) as s:
            i = s.get(Issue, occ.subject_id)
            if i is None:
                return Completion.obsolete("the issue no longer exists")
            channel_id, thread = i.channel_id, i.message_ts
            earlier = s.connection().execute(_EARLIER_NOTE, {"subject": occ.subject_id, "id": occ.id}).first()
        if earlier is not None:  # after it: a second from now, or from its own retry's time
            return run_again(occ, max(ctx.now, earlier.run_at) + NOTE_AFTER, ctx.now,
                             "an earlier line of the issue's thread goes first")
        if thread is None:
            raise SlackError("issue_note", "card_not_posted_yet")  # retried after a backoff
        text = str(occ.payload["text"])
        channel, ts = ctx.post(channel_id, text=text, thread_ts=thread, blocks=[section(text)])
        return Completion.done(channel, ts)

    def run_sla(self, occ: Occurrence, ctx: RunContext) -> Completion:
        """One level of a clock's ladder, after re-checking that this run of the clock is still running and that
        this level is its next one. It posts nothing itself: in its completion it records the level as reached,
        plans the next one, and plans the direct messages (notices), the thread note and the card's update, each
        once (keyed by the issue, clock, run and level)."""
        clock, run, level = str(occ.payload["clock"]), int(occ.payload["run"]), Level(str(occ.payload["level"]))
        issue_id = occ.subject_id
        with self.uow(read_only=True) as s:
            i = s.get(Issue, issue_id)
            p = s.get(Partnership, i.partnership_id) if i is not None else None
            if i is None or p is None or p.status != PartnershipStatus.ACTIVE:
                return Completion.obsolete("the issue or its partnership is gone")
            if (why_not := self._sla_stale(i, clock, run, level)) is not None:
                return Completion.obsolete(why_not, apply=lambda s: self._plan_timer(s, issue_id, ctx.now))
            hours = hours_of(s.get(IssueSlaSettings, p.id))
            c = clock_of(i, clock)

            def climb(s: Session) -> None:  # skipped: the level counts as reached, and the next one is planned
                self._climb(s, issue_id, clock, run, level, ctx.now)

            if level == Level.WARN and (due := c.due_at(p.timezone, hours)) is not None and ctx.now >= due:
                return Completion.skipped("the target has passed too: the breach says it", apply=climb)  # a restart
            if level == Level.ESCALATE and self._escalated_by_hand(s, i, clock, run):
                return Completion.skipped("escalated by hand during this run of the clock", apply=climb)
            left = c.left(ctx.now, p.timezone, hours)
        link = self._link(i, ctx.slack)
        key = f"{ISSUE_SLA}:{issue_id}:{clock}:{run}:{level.value}"

        def apply(s: Session) -> None:
            climbed = self._climb(s, issue_id, clock, run, level, ctx.now)
            if climbed is None:
                return  # resolved, acknowledged or restarted while Slack was asked for the link
            row, part = climbed
            if level == Level.ESCALATE and self._escalated_by_hand(s, row, clock, run):
                return  # escalated by hand meanwhile: the sponsors heard it
            now = ctx.now
            if level == Level.WARN:
                plan_notices(s, subject_id=part.id or 0, people=self._owners_or_partnership(s, row, part), now=now,
                             key=f"{key}:dm", text=iblocks.warn_text(row, part.name, clock, format_left(left, hours),
                                                                     link))
            elif level == Level.BREACH:
                people = list(dict.fromkeys([*self._issue_owners(row), *self.partnerships.owners(s, part.id)]))
                plan_notices(s, subject_id=part.id or 0, people=people, now=now, key=f"{key}:dm",
                             text=iblocks.breach_dm(row, part.name, clock, format_target(c.target, hours), link))
                self._note(s, row, f"sla:{clock}:{run}:{level.value}",
                           f":rotating_light: {iblocks.breach_text(row, clock, format_target(c.target, hours))}.", now)
            else:
                twice = format_target(c.target * LEVEL_FRACTION[Level.ESCALATE], hours)
                why = (f"{iblocks.breach_text(row, clock, format_target(c.target, hours))}, and it is still not "
                       f"after {twice}.")
                self._escalation_dms(s, row, part, key, why, link, now)
            self._event(s, row, part, self.bot_user_id or "bot", f"sla_{level.value}", clock=clock, run=run)

        return Completion.done(apply=apply)

    def _climb(self, s: Session, issue_id: int | None, clock: str, run: int, level: Level,
               now: datetime) -> tuple[Issue, Partnership] | None:
        """Inside a level's completion (sent, skipped or failed for good): when `level` is still the next one of
        this run of the clock, record it as reached and plan the issue's next level (`next_level`), and have the
        card show it; returns the issue (locked) and its partnership. None: the level must not go out (the issue
        is gone, the run is over, or the level was reached already). A pause since the executor's check does not
        stop a level that was due before it; the resume plans the next one."""
        request_refresh(s, kind=ISSUE_CARD, subject_id=issue_id or 0, refreshed_at=None, now=now)  # as `_change`
        i = s.get(Issue, issue_id, with_for_update=True) if issue_id else None
        p = s.get(Partnership, i.partnership_id) if i is not None else None
        if i is None or p is None or p.status != PartnershipStatus.ACTIVE:
            return None
        if self._sla_stale(i, clock, run, level, paused_ok=True) is not None:
            return None
        reached = LEVELS.index(level) + 1
        if clock == "ack":
            i.ack_reached = reached
        else:
            i.res_reached = reached
        s.add(i)
        s.flush()
        if (nxt := next_level(i, p.timezone, hours_of(s.get(IssueSlaSettings, p.id)))) is not None:
            upsert_planned(s, [nxt], now)
        return i, p

    def _plan_timer(self, s: Session, issue_id: int | None, now: datetime) -> None:
        """Inside the completion of a level not sent because its clock had stopped, paused or moved on: the issue's
        SLA timer as it stands now. A change recorded while the level was claimed could not plan that level again
        (a resume right after a pause: the same key), so without this the clock would run with nothing planned."""
        i = s.get(Issue, issue_id, with_for_update=True, populate_existing=True) if issue_id else None
        p = s.get(Partnership, i.partnership_id) if i is not None else None
        if i is None or p is None or p.status != PartnershipStatus.ACTIVE:
            return
        if (nxt := next_level(i, p.timezone, hours_of(s.get(IssueSlaSettings, p.id)))) is not None:
            upsert_planned(s, [nxt], now)

    @staticmethod
    def _sla_stale(i: Issue, clock: str, run: int, level: Level, *, paused_ok: bool = False) -> str | None:
        """Why a level of this run of this clock is not due any more (None: it is): the run is over (stopped, or a
        new run started) or paused (unless `paused_ok`), or the level is not the run's next one (reached
        already)."""
        c = clock_of(i, clock)
        if run != run_of(i, clock) or not (c.running or (paused_ok and c.paused)):
            return "the clock stopped, paused or started again"
        if reached_of(i, clock) != LEVELS.index(level):
            return "this level of the clock's run was reached already"
        return None

    def _escalated_by_hand(self, s: Session, i: Issue, clock: str, run: int) -> bool:
        """This run of this clock was escalated by hand: its automatic escalation is not sent (it still counts as
        reached, so the other clock's ladder goes on)."""
        return any(d.get("clock") == clock and d.get("run") == run for d in self._manual_escalations(s, i))

    def _manual_escalations(self, s: Session, i: Issue) -> list[dict[str, Any]]:
        """The details of the issue's manual escalations (which clock and run, which request), from its history."""
        return [e.detail for e in s.exec(select(IssueEvent).where(IssueEvent.issue_id == i.id,
                                                                  IssueEvent.action == ESCALATED)).all()]

    def run_due(self, occ: Occurrence, ctx: RunContext) -> Completion:
        """The due-date reminder (the day before) or overdue note (the day after): direct messages to the issue's
        owners (the partnership's owners when it has none); the overdue note also in the card's thread."""
        what, due = str(occ.payload["what"]), str(occ.payload["due"])
        with self.uow(read_only=True) as s:
            i = s.get(Issue, occ.subject_id)
            p = s.get(Partnership, i.partnership_id) if i is not None else None
            if i is None or p is None or p.status != PartnershipStatus.ACTIVE:
                return Completion.obsolete("the issue or its partnership is gone")
            if i.status == IssueStatus.RESOLVED or i.due_date is None or i.due_date.isoformat() != due:
                return Completion.obsolete("the issue was resolved or its due date changed")
        link = self._link(i, ctx.slack)
        issue_id, overdue = i.id, what == "overdue"

        def apply(s: Session) -> None:
            row = s.get(Issue, issue_id)
            part = s.get(Partnership, row.partnership_id) if row is not None else None
            if row is None or part is None or part.status != PartnershipStatus.ACTIVE:
                return
            if row.status == IssueStatus.RESOLVED or row.due_date is None or row.due_date.isoformat() != due:
                return  # resolved, or the due date changed, while Slack was asked for the link
            text = iblocks.due_text(row, part.name, overdue, link)
            plan_notices(s, subject_id=part.id or 0, people=self._owners_or_partnership(s, row, part), now=ctx.now,
                         key=f"{occ.key}:dm", text=text)
            if overdue:
                self._note(s, row, f"overdue:{due}", f":warning: #{row.number} is overdue (it was due {due}).",
                           ctx.now)

        return Completion.done(apply=apply)

    def on_failure(self, s: Session, occ: Occurrence, error: str) -> None:
        """A card or thread note that cannot be posted for good: a channel found archived or deleted is recorded on
        the partnership (its owners are told once); nothing else is stopped: the ladder's direct messages still go
        out. Other failures are logged."""
        if occ.kind == ISSUE_SLA:  # a level that cannot be sent does not stop the ladder: the next one is planned
            payload = occ.payload
            self._climb(s, occ.subject_id, str(payload["clock"]), int(payload["run"]), Level(str(payload["level"])),
                        self.clock.now())
        i = s.get(Issue, occ.subject_id)
        p = s.get(Partnership, i.partnership_id) if i is not None else None
        if p is not None and p.status == PartnershipStatus.ACTIVE and error in CHANNEL_GONE:
            self.partnerships.mark_channel(s, p, gone=True, error=error)
        log.warning("issue occurrence %s failed for good: %s", occ.key, error)

    # -- helpers -----------------------------------------------------------------------------------------------------
    def _load(self, s: Session, issue_id: int, *, lock: bool = False) -> tuple[Issue, Partnership]:
        i = s.get(Issue, issue_id, with_for_update=lock) if issue_id else None
        p = s.get(Partnership, i.partnership_id) if i is not None else None
        if i is None or p is None:
            raise NotFound("That issue no longer exists. `/partner issues` lists the current ones.")
        return i, p

    def _check_channel(self, i: Issue, p: Partnership, channel_id: str | None) -> None:
        """A button clicked in another channel than its partnership's (a replayed or forwarded one) is refused;
        one in a direct message (a reminder) is fine."""
        if channel_id and channel_id[:1] in ("C", "G") and channel_id != p.channel_id:
            raise Forbidden(f"This button belongs to issue #{i.number} of *{escape(p.name)}*; use it in "
                            f"<#{p.channel_id}>.")

    def _issue_owners(self, i: Issue) -> list[str]:
        return [u for u in (i.owner_ours, i.owner_partner) if u]

    def _owners_or_partnership(self, s: Session, i: Issue, p: Partnership) -> list[str]:
        return self._issue_owners(i) or self.partnerships.owners(s, p.id)

    def _authorize(self, s: Session, p: Partnership, i: Issue, actor: str, action: str) -> None:
        """Acknowledge, assign, waiting/resume and resolve: the issue's owners (either side) and the partnership's
        owners. Edit: those, and the issue's reporter. Reopen: the reporter or a partnership owner. Escalate: anyone
        recorded in the partnership."""
        what = f"{WORDS[action][0]} (issue #{i.number})"
        if action == "escalate":
            self.partnerships.authorize(s, p, actor, what)
        elif action == "reopen":
            self.partnerships.authorize(s, p, actor, what, need=Access.OWNER, also=[i.reporter],
                                        also_who=f"its reporter ({mention(i.reporter)})")
        else:
            owners = self._issue_owners(i)
            who = (f"the owners of issue #{i.number} ({', '.join(mention(u) for u in owners)})" if owners
                   else f"the owners of issue #{i.number} (it has none yet)")
            if action == "edit":
                owners, who = [*owners, i.reporter], f"{who}, its reporter ({mention(i.reporter)})"
            self.partnerships.authorize(s, p, actor, what, need=Access.OWNER, also=owners, also_who=who)

    def _replan(self, s: Session, i: Issue, p: Partnership, hours: WorkingHours | None, now: datetime) -> None:
        """A change of state: drop the pending timers and plan the current ones at once (same transaction).

        The rows are read first and only those that change are written (`skip_planned`): a level being completed
        right now is claimed, so there is nothing to plan for it, and an upsert would still wait for its row, which
        the completion holds while it waits for the card's row this change holds (a deadlock on PostgreSQL). The
        completion plans the next level itself."""
        assert i.id is not None
        i.planned_version = i.version
        mark_obsolete(s, kinds=[ISSUE_SLA, ISSUE_DUE], subject_id=i.id, now=now, note="the issue changed")
        upsert_planned(s, [r for r in sla_rows(i, p.timezone, hours)
                           if r.get("not_after") is None or r["not_after"] > now], now, skip_planned=True)

    def _request_card(self, s: Session, i: Issue, now: datetime) -> None:
        assert i.id is not None
        request_refresh(s, kind=ISSUE_CARD, subject_id=i.id, refreshed_at=i.card_refreshed_at, now=now)

    def _note(self, s: Session, i: Issue, what: str, text: str, now: datetime) -> None:
        """One line in the card's thread, posted once by the engine."""
        insert_new(s, [{"key": f"{ISSUE_NOTE}:{i.id}:{what}", "kind": ISSUE_NOTE, "subject_id": i.id,
                        "due_at": now, "payload": {"text": text}}], now)

    def _event(self, s: Session, i: Issue, p: Partnership, actor: str, action: str, **detail: Any) -> None:
        """The issue's history and the partnership's audit trail."""
        assert i.id is not None
        s.add(IssueEvent(issue_id=i.id, at=self.clock.now(), actor=actor, action=action, detail=detail))
        self.partnerships.audit(s, p, actor, f"issue_{action}"[:64], issue=i.number, **detail)

    def _escalation_dms(self, s: Session, i: Issue, p: Partnership, key: str, why: str, link: str | None,
                        now: datetime, *, note: bool = True) -> tuple[list[str], str]:
        """Level 2: the sponsors on both sides by direct message (a side without one: its owners, or on the
        partner's side its partner contacts; see PartnershipService.escalation_people), and (`note`) a line in the
        thread naming who heard it on which side. Returns who was told, and that as text."""
        groups = self.partnerships.escalation_people(s, p.id)
        people = list(dict.fromkeys(u for g in groups for u in g.people))
        plan_notices(s, subject_id=p.id or 0, people=people, now=now, key=f"{key}:dm",
                     text=iblocks.escalation_dm(i, p.name, why, link))
        who = escalated_to(groups)
        if note:
            self._note(s, i, key.removeprefix(f"{ISSUE_SLA}:{i.id}:"), f":sos: #{i.number} was escalated to {who}.",
                       now)
        return people, who

    def _link(self, i: Issue, slack: SlackGateway | None = None) -> str | None:
        if not i.message_ts:
            return None
        try:
            return (slack or self.slack).permalink(i.channel_id, i.message_ts)
        except SlackError as exc:
            log.info("no link to the card of issue %s: %s", i.id, exc.code)
            return None

