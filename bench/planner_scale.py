"""Planner scale benchmark: N partnerships with everything the planner plans, on SQLite.

Usage, from the repository root in the project's virtualenv:

    python bench/planner_scale.py [--partnerships N]
    python -m bench.planner_scale  [--partnerships N]

Other options: --ticks T (how many dispatcher ticks with nothing due are timed, default 5; the median counts).

What it does:
- Wires the real app with `bot.build` (migrations, services, the Dispatcher, the Ticker; the Slack Web API is the
  fake in tests/fakes, only asked for `auth.test`: planning calls no Slack method) on a temporary SQLite file, with
  the app's clock frozen at NOW (a Tuesday 03:00 UTC, the day before the first working day of a month).
- Seeds N active partnerships in bulk (Core inserts, straight into the database): each with an owner on our side
  and a contact on the partner's side, and one row set per feature in `SEEDERS`: a check-in schedule (Monday to
  Friday, 09:00 local), a weekly pulse survey (Wednesdays, 10:00), an open milestone due in 8 days, and an open
  poll (already posted) with its close and its reminder pending, and five open issues (logged ten
  minutes before, both SLA clocks running, their timers not planned yet, as after an upgrade or a crash between a
  change and its planning: the cold pass plans them). A feature with a
  planner hook adds its seeding function to `SEEDERS` and nothing else: the passes below run every hook of
  `build_planners`.
- Measures, through the code the running bot runs:
  - plan: one full planning pass from cold (nothing planned yet): `Ticker.plan`, every planner of
    `build_planners`, as at start-up and every few minutes after;
  - replan: the same pass again with nothing changed;
  - tick: `Dispatcher.tick` with nothing due (the heartbeat and the claim query over every pending row), timed
    T times after one untimed tick (the first compiles its statements), the median counts.
  For each: wall seconds and SQL statements (a SQLAlchemy `before_cursor_execute` listener: one per statement
  sent to the driver, an executemany of many rows counts once; SQLite's BEGIN counts, COMMIT does not reach it).

It prints a few human-readable lines, then as its last line:

    partnerships=N plan_s=A replan_s=B tick_ms=C rss_mb=D statements=E

A, B: the planning passes' seconds; C: the median tick's milliseconds; D: the peak resident set of the whole
process (`getrusage`: imports, seeding and the passes); E: the statements of the cold planning pass (the replan's
and the tick's are printed above it). Goals at N = 10,000: A <= 5, B <= 1, C <= 50, D < 200, and E the same for
any N (each planner reads and writes in batches, not a statement per partnership or per row; the issue planner
plans 5,000 issues per transaction, so its cold pass adds four statements per 5,000 issues).
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository root is importable (bench/ is not installed)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
from sqlalchemy import event

from bench.checkin_fanout import BOT_USER, SIGNING_SECRET, TEAM, TOKEN, ZONE, _fake_slack_class
from bot import Partnerbot, build
from config.settings import Settings
from models.checkin import CheckinSchedule, ParticipantMode
from models.issue import Issue, IssueSource, IssueStatus
from models.milestone import Milestone, MilestoneStatus
from models.partnership import Member, Partnership, PartnershipStatus, Role, Side
from models.poll import Poll, PollAudience, PollKind, PollStatus, ResultsMode
from models.pulse import Audience, CadenceKind, PulseSchedule
from models.scheduling import Occurrence, OccurrenceState
from services.scheduling import POLL_CLOSE, POLL_POST, POLL_REMIND
from services.sla import DEFAULT_TARGETS, Severity

# A Tuesday, 05:00 in Berlin: nothing is due yet; today's and tomorrow's check-ins, tomorrow's pulse round and the
# monthly recap of the first working day (Wednesday 1 May) are within the planners' horizons.
NOW = datetime(2030, 4, 30, 3, 0, tzinfo=UTC)
CREATED = NOW - timedelta(days=60)
BATCH = 2000  # seeding rows per executemany

Out = Callable[[str], None]


class FixedClock:
    """The app's clock, frozen at NOW: every pass sees the same instant."""

    def now(self) -> datetime:
        return NOW


# -- seeding -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Seeded:
    """The partnerships seeded so far, for the feature seeders: id -> (owner on our side, partner contact)."""

    people: dict[int, tuple[str, str]]
    now: datetime


# A feature's seeder: inserts its rows for every partnership (Core, in batches); returns how many rows.
Seeder = Callable[[sa.Connection, Seeded], int]


def _insert(conn: sa.Connection, table: Any, rows: Sequence[dict[str, Any]]) -> int:
    for start in range(0, len(rows), BATCH):
        conn.execute(sa.insert(table), list(rows[start : start + BATCH]))
    return len(rows)


def seed_partnerships(conn: sa.Connection, n: int) -> Seeded:
    """N active partnerships, each with a channel, an owner (our side) and a partner contact."""
    _insert(conn, Partnership.__table__, [  # type: ignore[attr-defined]
        {"name": f"Bench {i:06d}", "open_name_key": f"bench {i:06d}", "partner_org": "Bench Partner", "goals": "",
         "timezone": ZONE, "is_private": False, "status": PartnershipStatus.ACTIVE, "team_id": TEAM,
         "channel_id": f"CBENCH{i:06d}", "channel_name": f"bench-{i:06d}", "created_by": f"UOWN{i:06d}",
         "created_at": CREATED}
        for i in range(n)])
    ids = [row.id for row in conn.execute(sa.select(Partnership.__table__.c.id)  # type: ignore[attr-defined]
                                          .order_by(Partnership.__table__.c.id))]  # type: ignore[attr-defined]
    people = {pid: (f"UOWN{i:06d}", f"UPAR{i:06d}") for i, pid in enumerate(ids)}
    _insert(conn, Member.__table__, [  # type: ignore[attr-defined]
        {"partnership_id": pid, "user_id": user, "role": role, "side": side, "added_by": owner, "added_at": CREATED}
        for pid, (owner, partner) in people.items()
        for user, role, side in ((owner, Role.OWNER, Side.OURS), (partner, Role.PARTNER_CONTACT, Side.PARTNER))])
    return Seeded(people=people, now=NOW)


def seed_checkins(conn: sa.Connection, seeded: Seeded) -> int:
    """A check-in schedule each: Monday to Friday at 09:00, everyone takes part."""
    return _insert(conn, CheckinSchedule.__table__, [  # type: ignore[attr-defined]
        {"partnership_id": pid, "weekdays": "mon,tue,wed,thu,fri", "local_time": "09:00", "timezone": ZONE,
         "questions": ["What did you do?", "What is next?", "Any blockers?"], "window_minutes": 240,
         "participant_mode": ParticipantMode.ALL, "participants": [], "remind_before_close_minutes": None,
         "paused": False, "version": 1, "effective_from": CREATED, "updated_by": owner, "updated_at": CREATED}
        for pid, (owner, _partner) in seeded.people.items()])


def seed_pulse(conn: sa.Connection, seeded: Seeded) -> int:
    """A weekly pulse survey each, Wednesdays at 10:00."""
    return _insert(conn, PulseSchedule.__table__, [  # type: ignore[attr-defined]
        {"partnership_id": pid, "cadence": CadenceKind.WEEKS, "every_weeks": 1, "nth": 1, "weekday": "wed",
         "anchor_date": CREATED.date(), "local_time": "10:00", "timezone": ZONE, "open_days": 3, "anonymous": True,
         "audience": Audience.BOTH, "questions": [{"kind": "rating", "text": "How is the partnership going?"}],
         "paused": False, "version": 1, "effective_from": CREATED, "updated_by": owner, "updated_at": CREATED}
        for pid, (owner, _partner) in seeded.people.items()])


def seed_milestones(conn: sa.Connection, seeded: Seeded) -> int:
    """An open milestone each, due in 8 days, owned by the owner (two reminders and an overdue note to plan)."""
    due = (seeded.now + timedelta(days=8)).date()
    return _insert(conn, Milestone.__table__, [  # type: ignore[attr-defined]
        {"partnership_id": pid, "number": 1, "title": "Pilot live", "done_means": "", "due_date": due,
         "original_due_date": due, "owners": [owner], "celebrate": True, "status": MilestoneStatus.OPEN,
         "version": 1, "times_done": 0, "created_by": owner, "created_at": CREATED, "changed_at": CREATED,
         "contributors": [], "done_note": ""}
        for pid, (owner, _partner) in seeded.people.items()])


def seed_polls(conn: sa.Connection, seeded: Seeded) -> int:
    """An open poll each, posted yesterday, closing in two days: its post done, its close and a reminder per
    person pending (as `PollService.create` plans them)."""
    posted, closes = seeded.now - timedelta(days=1), seeded.now + timedelta(days=2)
    remind = posted + (closes - posted) / 2
    _insert(conn, Poll.__table__, [  # type: ignore[attr-defined]
        {"partnership_id": pid, "number": 1, "creation_key": f"bench-poll-{pid}", "question": "Which launch date?",
         "kind": PollKind.SINGLE, "options": ["March 3", "March 10"], "anonymous": False,
         "results": ResultsMode.LIVE, "audience": PollAudience.ALL, "chosen": [], "timezone": ZONE,
         "created_by": owner, "created_at": posted, "closes_at": closes, "remind_at": remind,
         "channel_id": f"CBENCH{pid:06d}", "message_ts": f"{posted.timestamp():.6f}", "status": PollStatus.OPEN,
         "closed_late": False}
        for pid, (owner, _partner) in seeded.people.items()])
    table = Poll.__table__  # type: ignore[attr-defined]
    polls = conn.execute(sa.select(table.c.id)).scalars().all()
    rows: list[dict[str, Any]] = []
    for poll_id in polls:
        rows.append(occurrence(f"{POLL_POST}:{poll_id}", POLL_POST, poll_id, posted, state=OccurrenceState.DONE))
        rows.append(occurrence(f"{POLL_CLOSE}:{poll_id}", POLL_CLOSE, poll_id, closes))
        rows.append(occurrence(f"{POLL_REMIND}:{poll_id}", POLL_REMIND, poll_id, remind, not_after=closes))
    return len(polls) + _insert(conn, Occurrence.__table__, rows)  # type: ignore[attr-defined]


def occurrence(key: str, kind: str, subject_id: int, due_at: datetime, *, state: OccurrenceState =
               OccurrenceState.PENDING, not_after: datetime | None = None,
               payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """An occurrence row as a feature plans it at a change (for seeders of already-planned work)."""
    return {"key": key, "kind": kind, "subject_id": subject_id, "due_at": due_at, "run_at": due_at,
            "not_after": not_after, "state": state, "attempts": 1 if state == OccurrenceState.DONE else 0,
            "failures": 0, "revision": 0, "payload": payload or {}, "created_at": due_at, "updated_at": due_at}


ISSUES_EACH = 5
ISSUE_SEVERITIES = (Severity.CRITICAL, Severity.HIGH, Severity.NORMAL, Severity.LOW, Severity.NORMAL)


def seed_issues(conn: sa.Connection, seeded: Seeded) -> int:
    """Five open issues each (critical, high, normal, low, normal), logged ten minutes ago, both SLA clocks running,
    with their timers not planned yet (`planned_version` 0, no occurrences: as right after an upgrade, or after a
    crash between a change and its planning): the cold pass plans each issue's SLA timer (the earliest next level
    of its clocks' ladders: the acknowledge clock's 80 % reminder), the second pass finds nothing to do, and a
    tick nothing due."""
    logged = seeded.now - timedelta(minutes=10)
    return _insert(conn, Issue.__table__, [  # type: ignore[attr-defined]
        {"partnership_id": pid, "number": n + 1, "creation_key": f"bench-issue-{pid}-{n}", "title": "Invoices rejected",
         "description": "", "severity": sev.value, "status": IssueStatus.OPEN, "reporter": partner,
         "owner_ours": owner, "owner_partner": partner, "source": IssueSource.COMMAND,
         "channel_id": f"CBENCH{pid:06d}", "message_ts": f"{logged.timestamp():.6f}", "version": 1,
         "planned_version": 0, "created_at": logged, "changed_at": logged, "resolution": "", "escalations": 0,
         "ack_target_s": int(DEFAULT_TARGETS[sev].acknowledge.total_seconds()), "ack_consumed_s": 0,
         "ack_running_since": logged, "res_target_s": int(DEFAULT_TARGETS[sev].resolve.total_seconds()),
         "res_consumed_s": 0, "res_running_since": logged, "res_run": 1}
        for pid, (owner, partner) in seeded.people.items() for n, sev in enumerate(ISSUE_SEVERITIES[:ISSUES_EACH])])


# Every feature's rows.
SEEDERS: dict[str, Seeder] = {
    "check-in schedules": seed_checkins,
    "pulse schedules": seed_pulse,
    "milestones": seed_milestones,
    "polls and their occurrences": seed_polls,
    "open issues with running SLA clocks, their timers not planned yet": seed_issues,
}


def seed(bot: Partnerbot, n: int) -> dict[str, int]:
    """Seed N partnerships and every feature's rows in one transaction. Returns rows per seeder."""
    counts: dict[str, int] = {}
    with bot.services.uow() as s:
        conn = s.connection()
        if conn.execute(sa.select(sa.func.count()).select_from(Partnership.__table__)).scalar_one():  # type: ignore[attr-defined]
            raise SystemExit("The benchmark needs an empty database.")
        seeded = seed_partnerships(conn, n)
        counts["partnerships"] = n
        for name, seeder in SEEDERS.items():
            counts[name] = seeder(conn, seeded)
    return counts


# -- measuring -----------------------------------------------------------------------------------------
class StatementCounter:
    """Counts the statements an engine sends to its driver (an executemany counts once)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, *_args: Any) -> None:
        self.count += 1

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._on_execute)


@dataclass(frozen=True)
class Pass:
    seconds: float  # wall time
    statements: int
    cpu_seconds: float  # the process's CPU time meanwhile (on a busy machine, wall time waits for a core)


@contextmanager
def measured(counter: StatementCounter, into: list[Pass]) -> Iterator[None]:
    before, started, cpu = counter.count, time.perf_counter(), time.process_time()
    yield
    into.append(Pass(time.perf_counter() - started, counter.count - before, time.process_time() - cpu))


def peak_rss_mb() -> float:
    """The process's peak resident set in MB (Linux reports kilobytes, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


@dataclass
class Result:
    partnerships: int
    plan: Pass
    replan: Pass
    tick: Pass  # the median tick
    rss_mb: float
    planned: dict[str, int] = field(default_factory=dict)  # pending occurrences per kind after the passes

    def last_line(self) -> str:
        return (f"partnerships={self.partnerships} plan_s={self.plan.seconds:.3f} replan_s={self.replan.seconds:.3f} "
                f"tick_ms={self.tick.seconds * 1000:.1f} rss_mb={self.rss_mb:.1f} statements={self.plan.statements}")


class PlanFailed(Exception):
    """A planner failed (the ticker logs it and carries on; the benchmark stops)."""


class _Failures(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def run_benchmark(partnerships: int, ticks: int = 5, out: Out = print) -> Result:
    """Run the benchmark once, printing human-readable lines through `out`; the caller prints the last line."""
    if partnerships < 1 or ticks < 1:
        raise ValueError("need partnerships >= 1 and ticks >= 1")
    fake = _fake_slack_class()(bot_token=TOKEN, team_id=TEAM, bot_user_id=BOT_USER).start()
    tmp = tempfile.TemporaryDirectory(prefix="partnerbot-bench-")
    url = f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    bot: Partnerbot | None = None
    failures = _Failures()
    ticker_log = logging.getLogger("jobs.ticker")
    ticker_log.addHandler(failures)
    try:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            slack_bot_token=TOKEN, slack_signing_secret=SIGNING_SECRET, slack_api_url=fake.base_url,
            database_url=url, host="127.0.0.1", default_timezone=ZONE,
        )
        bot = build(settings, clock=FixedClock())
        started = time.perf_counter()
        counts = seed(bot, partnerships)
        seeded = ", ".join(f"{n} {what}" for what, n in counts.items())
        out(f"seeded in {time.perf_counter() - started:.3f} s: {seeded}; the app's clock is frozen at "
            f"{NOW:%Y-%m-%d %H:%M} UTC ({NOW:%A}); SQLite, temporary file")

        counter = StatementCounter(bot.services.engine)
        passes: list[Pass] = []
        with measured(counter, passes):
            bot.ticker.plan()
        planned = pending_by_kind(bot)
        with measured(counter, passes):
            bot.ticker.plan()
        if failures.messages:
            raise PlanFailed("; ".join(failures.messages))
        if pending_by_kind(bot) != planned:
            raise PlanFailed("the second pass changed what was planned")
        dispatcher = bot.ticker.dispatcher
        if dispatcher.tick():  # untimed: compiles the tick's statements
            raise PlanFailed("something was due at the tick")
        ticked: list[Pass] = []
        for _ in range(ticks):
            with measured(counter, ticked):
                if dispatcher.tick():
                    raise PlanFailed("something was due at the tick")
        counter.close()
        plan, replan = passes
        tick = sorted(ticked, key=lambda p: p.seconds)[len(ticked) // 2]
        out("pending occurrences after planning: " + ", ".join(f"{kind}={n}" for kind, n in sorted(planned.items())))
        out(f"plan (cold): {plan.seconds:.3f} s (CPU {plan.cpu_seconds:.3f} s), {plan.statements} statements; "
            f"replan (nothing changed): {replan.seconds:.3f} s (CPU {replan.cpu_seconds:.3f} s), "
            f"{replan.statements} statements")
        out(f"tick (nothing due): median {tick.seconds * 1000:.1f} ms of {ticks} "
            f"({', '.join(f'{p.seconds * 1000:.1f}' for p in ticked)} ms), {tick.statements} statements")
        return Result(partnerships=partnerships, plan=plan, replan=replan, tick=tick, rss_mb=peak_rss_mb(),
                      planned=planned)
    finally:
        ticker_log.removeHandler(failures)
        if bot is not None:
            bot.close()
        fake.stop()
        tmp.cleanup()


def pending_by_kind(bot: Partnerbot) -> dict[str, int]:
    table = Occurrence.__table__  # type: ignore[attr-defined]
    with bot.services.uow(read_only=True) as s:
        rows = s.connection().execute(sa.select(table.c.kind, sa.func.count()).where(
            table.c.state == OccurrenceState.PENDING.value).group_by(table.c.kind)).all()
    return dict(Counter({str(kind): int(n) for kind, n in rows}))


# -- command line ---------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from command-line arguments; prints the result line last."""
    parser = argparse.ArgumentParser(
        prog="python bench/planner_scale.py",
        description="N partnerships with everything the planner plans: one planning pass from cold, one with "
                    "nothing changed, and dispatcher ticks with nothing due, on SQLite.")
    parser.add_argument("--partnerships", type=int, default=10_000, metavar="N", help="default 10000")
    parser.add_argument("--ticks", type=int, default=5, metavar="T", help="timed ticks (the median counts), default 5")
    ns = parser.parse_args(argv)
    result = run_benchmark(ns.partnerships, ns.ticks, out=lambda line: print(line, flush=True))
    print(result.last_line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
