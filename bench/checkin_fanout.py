"""Check-in fan-out benchmark: N partnerships whose check-in prompts are all due in the same minute.

Usage, from the repository root in the project's virtualenv:

    python bench/checkin_fanout.py [--partnerships N] [--latency-ms L] [--workers W] [--rate-limit] [--cap C]
    python -m bench.checkin_fanout  [same options]

Other options: --database-url URL (an empty database, e.g. postgresql+psycopg://...; the benchmark's rows stay
in it; default: SQLite in a temporary directory, removed afterwards; on PostgreSQL the dispatcher keeps its
leases on the app's shifted clock, as PostgreSQL's now() cannot be shifted), --tick-seconds (the ticker's dispatch
interval, default 2.0 as in production), --lead-seconds (how long before the due instant the ticker starts and
plans, default 3), --timeout, --verbose.

What it does:
- Starts the stateful fake Slack (tests/fakes/slack.py) on loopback HTTP and wires the real app with
  `bot.build` (migrations, services, the Dispatcher with W worker threads, the APScheduler Ticker).
- Seeds N active partnerships directly in the database (a channel in the fake with the bot as member, one
  owner each, a CheckinSchedule due at the same local time in the same zone), then sets the fake's latency
  to L ms per call (and, with --rate-limit, Slack's limits under load: about 1 message per second per
  channel and C messages a minute per workspace, excess refused with HTTP 429 and an integer Retry-After).
- The app's clock is the real time shifted by a constant, chosen so that "now" is exactly the prompts' due
  instant when a dispatch tick of the ticker fires. The ticker starts a little earlier (--lead-seconds,
  rounded up to whole ticks), so its plan job plans the prompts through the real planner beforehand.
- Measures the wall time from the due instant until the fake has stored the last prompt message. Then,
  in the same run, a plain sequential loop posts the same prompts (same text, blocks and metadata, one
  chat.postMessage each through the same gateway and WebClient, same latency, into fresh channels;
  with --rate-limit the limit is switched off for this loop so that it does not take minutes).

It prints a few human-readable lines, then as its last line:

    duplicates=D missing=M failed=F seconds=S limit_ratio=R vs_sequential=X cpu_ms_per_post=C [cap_ratio=Q]

D: prompts posted more than once (messages per occurrence key in the message metadata); M: expected
keys with no message; F: occurrences in state failed; S: engine seconds from due to the last prompt;
R: the ideal time N x L / W divided by S (>= 0.8: the engine is not the bottleneck); X: the sequential
loop's time divided by S; C: the app's CPU time per prompt (process CPU from the due instant until every
prompt's completion is recorded, less the benchmark's own polling thread); Q (only with --rate-limit): the
ideal time N / (C / 60) divided by S.
The exit status is 1 when D, M or F is not 0. The fake Slack runs in a child process (as Slack runs
elsewhere), so the "cores busy" line (process CPU / S) is the app's alone; near 1.0 means the run was
CPU-bound (one interpreter lock).
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, func, select

from bot import Partnerbot, build
from config.settings import Settings
from models.checkin import CheckinSchedule
from models.partnership import Member, Partnership, PartnershipStatus, Role, Side
from models.scheduling import Occurrence, OccurrenceState
from services.recurrence import WEEKDAYS, local_to_utc
from services.scheduling import CHECKIN_PROMPT, occurrence_key_of

if TYPE_CHECKING:
    from tests.fakes.slack import FakeSlack

ROOT = Path(__file__).resolve().parents[1]

TOKEN = "xoxb-bench"  # noqa: S105 - the fake Slack's token, not a secret
SIGNING_SECRET = "bench-signing-secret"  # noqa: S105 - unused: no HTTP endpoint is served
TEAM = "T0BENCH"
BOT_USER = "UBOT"
ZONE = "Europe/Berlin"
DUE_DAY = date(2030, 3, 13)  # a mid-month Wednesday: no monthly work (the wins recap) is due with the prompts
LOCAL_TIME = "09:00"
POLL_SECONDS = 0.05

Out = Callable[[str], None]


@dataclass(frozen=True)
class Config:
    partnerships: int = 1000
    latency_ms: float = 50.0
    workers: int = 8
    rate_limit: bool = False
    cap: int = 300
    database_url: str | None = None
    tick_seconds: float = 2.0
    lead_seconds: float = 3.0
    timeout: float | None = None  # None: derived from the ideal time

    def ideal_seconds(self) -> float:
        """N x L / W: every worker busy with one Slack call after another."""
        return self.partnerships * self.latency_ms / 1000.0 / self.workers

    def cap_seconds(self) -> float:
        """N / (C / 60): the workspace cap's pace."""
        return self.partnerships / (self.cap / 60.0)

    def deadline(self) -> float:
        if self.timeout is not None:
            return self.timeout
        if self.rate_limit:
            return 120.0 + 3 * max(self.cap_seconds(), self.ideal_seconds())
        return 60.0 + 20 * self.ideal_seconds()


@dataclass
class Result:
    partnerships: int
    duplicates: int
    missing: int
    failed: int
    seconds: float
    limit_ratio: float
    vs_sequential: float
    cpu_ms_per_post: float
    cap_ratio: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def last_line(self) -> str:
        line = (f"duplicates={self.duplicates} missing={self.missing} failed={self.failed} "
                f"seconds={self.seconds:.3f} limit_ratio={self.limit_ratio:.3f} vs_sequential={self.vs_sequential:.3f} "
                f"cpu_ms_per_post={self.cpu_ms_per_post:.2f}")
        if self.cap_ratio is not None:
            line += f" cap_ratio={self.cap_ratio:.3f}"
        return line


class ShiftedClock:
    """The real time shifted by a constant (`offset`, in seconds), set once before the ticker starts."""

    def __init__(self) -> None:
        self.offset = 0.0

    def epoch(self) -> float:
        return time.time() + self.offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.epoch(), UTC)


class PromptWatch:
    """Fed by the fake's after_success hook: when each expected prompt was stored (time.monotonic, which
    is one clock for every process on the machine)."""

    def __init__(self, expected: set[str]) -> None:
        self.expected = expected
        self.posted_at: dict[str, float] = {}
        self.last = 0.0
        self._lock = threading.Lock()

    def __call__(self, method: str, args: dict[str, Any], body: dict[str, Any]) -> None:
        if method != "chat.postMessage":
            return
        key = occurrence_key_of(args.get("metadata"))
        if key not in self.expected:
            return
        now = time.monotonic()
        with self._lock:
            self.posted_at.setdefault(key, now)
            self.last = max(self.last, now)


class RemoteFake:
    """The fake Slack in a child process, as Slack runs elsewhere: its HTTP serving does not compete with
    the app for this process's interpreter lock. Commands go over a pipe."""

    def __init__(self, serve: Callable[[Any], None] | None = None) -> None:
        """`serve`: the child's function (a module-level one, taking the pipe's end); default `_serve_fake`."""
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=serve or _serve_fake, args=(child,), daemon=True, name="fake-slack")
        self._proc.start()
        self.base_url: str = self._call("base_url")

    def _call(self, command: str, *args: Any) -> Any:
        self._conn.send((command, args))
        ok, value = self._conn.recv()
        if not ok:
            raise RuntimeError(f"fake Slack: {value}")
        return value

    def __getattr__(self, command: str) -> Callable[..., Any]:
        if command.startswith("_"):
            raise AttributeError(command)
        return lambda *args: self._call(command, *args)

    def stop(self) -> None:
        try:
            self._call("stop")
        finally:
            self._proc.join(timeout=10)


def _serve_fake(conn: Any) -> None:
    """The child process: a FakeSlack and the commands the benchmark sends it."""
    fake = _fake_slack_class()(bot_token=TOKEN, team_id=TEAM, bot_user_id=BOT_USER)
    offset = [0.0]
    fake.clock = lambda: time.time() + offset[0]
    fake.start()
    watch = PromptWatch(set())

    def set_watch(expected: list[str]) -> None:
        nonlocal watch
        watch = PromptWatch(set(expected))
        fake.after_success = watch

    def add_channels(names: list[str], members: list[str]) -> list[str]:
        return [fake.add_channel(name, members=members) for name in names]

    def set_rate_limit(cap: int | None) -> None:
        fake.rate = None if cap is None else fake.rate_limit(per_channel_interval=1.0, workspace_per_minute=cap)

    def posted_prompts(channels: list[str]) -> list[tuple[str, str, Any, Any]]:
        found = []
        for channel in channels:
            for m in fake.messages(channel):
                key = occurrence_key_of(m.get("metadata"))
                if key is not None:
                    found.append((key, m["text"], m.get("blocks"), m["metadata"]))
        return found

    commands: dict[str, Callable[..., Any]] = {
        "base_url": lambda: fake.base_url,
        "set_offset": lambda seconds: offset.__setitem__(0, seconds),
        "add_channels": add_channels,
        "set_latency": lambda seconds: setattr(fake, "latency", seconds),
        "set_rate_limit": set_rate_limit,
        "refused": lambda: fake.rate.refused if fake.rate is not None else 0,
        "call_count": fake.call_count,
        "watch": set_watch,
        # Polled every few milliseconds: a small status only; the per-prompt times are fetched once, at the end.
        "watch_status": lambda: (len(watch.posted_at), len(watch.expected), watch.last),
        "posted_at": lambda: dict(watch.posted_at),
        "unwatch": lambda: setattr(fake, "after_success", None),
        "posted_prompts": posted_prompts,
    }
    try:
        while True:
            command, args = conn.recv()
            if command == "stop":
                conn.send((True, None))
                return
            try:
                conn.send((True, commands[command](*args)))
            except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
                conn.send((False, f"{command}: {exc!r}"))
    finally:
        fake.stop()


def _fake_slack_class() -> type[FakeSlack]:
    """The fake lives in tests/, which is not an installed package: make the repository root importable."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.fakes.slack import FakeSlack

    return FakeSlack


def due_instant() -> datetime:
    hours, minutes = (int(x) for x in LOCAL_TIME.split(":"))
    return local_to_utc(DUE_DAY, wall_time(hours, minutes), ZONE)


def prompt_keys(ids: Sequence[int]) -> set[str]:
    return {f"checkin:{pid}:{DUE_DAY.isoformat()}" for pid in ids}


# -- seeding -------------------------------------------------------------------------------------------
def seed(bot: Partnerbot, fake: RemoteFake, n: int, due: datetime) -> dict[int, str]:
    """N active partnerships with a channel, an owner and a schedule due at `due`, straight into the
    database (no Slack calls). Returns partnership id -> channel id."""
    weekday = WEEKDAYS[DUE_DAY.weekday()]
    created = due - timedelta(days=7)
    with bot.services.uow() as s:
        if s.exec(select(func.count()).select_from(Partnership)).one():
            raise SystemExit("The benchmark needs an empty database (it found partnerships in DATABASE_URL).")
        rows = []
        channels = fake.add_channels([f"bench-{i:06d}" for i in range(n)], [BOT_USER])
        for i, channel in enumerate(channels):
            owner = f"UOWN{i:06d}"
            rows.append(Partnership(
                name=f"Bench {i:06d}", open_name_key=f"bench {i:06d}", partner_org="Bench Partner", timezone=ZONE,
                status=PartnershipStatus.ACTIVE, team_id=TEAM, channel_id=channel, channel_name=f"bench-{i:06d}",
                created_by=owner, created_at=created,
            ))
        s.add_all(rows)
        s.flush()
        for p in rows:
            assert p.id is not None
            s.add(Member(partnership_id=p.id, user_id=p.created_by, role=Role.OWNER, side=Side.OURS,
                         added_by=p.created_by, added_at=created))
            s.add(CheckinSchedule(partnership_id=p.id, weekdays=weekday, local_time=LOCAL_TIME, timezone=ZONE,
                                  version=1, effective_from=created, updated_by=p.created_by, updated_at=created))
        return {int(p.id or 0): str(p.channel_id) for p in rows}


# -- reading the database without taking SQLite's write lock --------------------------------------------
@contextmanager
def reader(url: str) -> Iterator[sa.Engine]:
    """A plain engine for polling: on SQLite (WAL) its reads never wait for, or block, the app's writers
    (the app's own unit of work starts every transaction with BEGIN IMMEDIATE)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


def count_prompts(engine: sa.Engine, *states: OccurrenceState) -> int:
    query = select(func.count()).select_from(Occurrence).where(col(Occurrence.kind) == CHECKIN_PROMPT)
    if states:
        query = query.where(col(Occurrence.state).in_([s.value for s in states]))
    with Session(engine) as s:
        return int(s.exec(query).one())


def state_counts(engine: sa.Engine) -> dict[str, Counter[str]]:
    with Session(engine) as s:
        rows = s.exec(select(Occurrence.kind, Occurrence.state, func.count()).group_by(
            col(Occurrence.kind), col(Occurrence.state))).all()
    out: dict[str, Counter[str]] = {}
    for kind, state, n in rows:
        out.setdefault(kind, Counter())[str(getattr(state, "value", state))] = int(n)
    return out


# -- the run --------------------------------------------------------------------------------------------
def run_benchmark(cfg: Config, out: Out = print) -> Result:
    """Run one benchmark, printing human-readable lines through `out`; the caller prints the last line."""
    if cfg.partnerships < 1 or cfg.latency_ms < 0 or not 1 <= cfg.workers <= 64 or cfg.cap < 1:
        raise ValueError("need partnerships >= 1, latency-ms >= 0, 1 <= workers <= 64, cap >= 1")
    clock = ShiftedClock()
    fake = RemoteFake()
    tmp = tempfile.TemporaryDirectory(prefix="partnerbot-bench-") if cfg.database_url is None else None
    url = cfg.database_url or f"sqlite:///{Path(tmp.name) / 'bench.db'}"  # type: ignore[union-attr]
    backend = make_url(url).get_backend_name()
    bot: Partnerbot | None = None
    try:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            slack_bot_token=TOKEN, slack_signing_secret=SIGNING_SECRET, slack_api_url=fake.base_url,
            database_url=url, host="127.0.0.1", default_timezone=ZONE, scheduler_workers=cfg.workers,
            scheduler_tick_seconds=cfg.tick_seconds,
        )
        bot = build(settings, clock=clock)
        if backend == "postgresql":
            # The benchmark shifts the app's clock to the due instant; PostgreSQL's now() cannot be shifted,
            # so leases and due times are kept on the app's clock here (production keeps them on now()).
            bot.ticker.dispatcher.database_clock = False
        due = due_instant()
        started = time.monotonic()
        channels = seed(bot, fake, cfg.partnerships, due)
        seeded = time.monotonic() - started
        expected = prompt_keys(list(channels))
        limits = f"on, cap={cfg.cap}/min, 1/s per channel" if cfg.rate_limit else "off"
        out(f"settings: partnerships={cfg.partnerships} latency_ms={cfg.latency_ms:g} workers={cfg.workers} "
            f"tick_seconds={cfg.tick_seconds:g} database={backend}{' (temporary file)' if tmp else ''} "
            f"rate_limit={limits}")
        out(f"seeded {cfg.partnerships} partnerships, channels and schedules in {seeded:.3f} s "
            f"(all due {due:%Y-%m-%d %H:%M} UTC = {LOCAL_TIME} {ZONE})")

        # Only now does Slack get slow (and strict).
        fake.set_latency(cfg.latency_ms / 1000.0)
        fake.set_rate_limit(cfg.cap if cfg.rate_limit else None)
        fake.watch(sorted(expected))

        with reader(url) as db:
            run = _run_engine(cfg, bot, clock, fake, db, due, out)
            engine_seconds, planned_at = run.seconds, run.planned_before_due
            posts_engine = fake.call_count("chat.postMessage")
            history_calls = fake.call_count("conversations.history")
            refused = fake.refused()
            fake.unwatch()
            posted = fake.posted_prompts(list(channels.values()))
            counts = Counter(key for key, *_ in posted)
            duplicates = sum(1 for n in counts.values() if n > 1)
            missing = len(expected - set(counts))
            unexpected = sum(n for key, n in counts.items() if key not in expected)
            states = state_counts(db)
            failed = sum(c.get(OccurrenceState.FAILED.value, 0) for c in states.values())

        prompts_per_s = len(run.posted_at) / engine_seconds if engine_seconds > 0 else float("nan")
        ideal = cfg.ideal_seconds()
        if planned_at >= 0:
            out(f"planned {cfg.partnerships} prompts through the ticker's plan job, done {planned_at:.3f} s before the "
                "due instant")
        else:  # late (negative) or never (nan)
            out(f"WARNING: the plan job had not planned every prompt by the due instant ({-planned_at:.3f} s late); "
                "raise --lead-seconds")
        out(f"engine: first prompt {run.first_post:.3f} s after due, last prompt {engine_seconds:.3f} s after due: "
            f"{prompts_per_s:.1f} prompts/s (ideal N x L / W = {ideal:.3f} s, "
            f"{cfg.workers / (cfg.latency_ms / 1000) if cfg.latency_ms else float('inf'):.1f} prompts/s)")
        out(f"app CPU from due until every prompt was recorded: {run.cpu_seconds:.3f} s = "
            f"{run.cpu_seconds / engine_seconds if engine_seconds > 0 else 0:.2f} cores busy on average (this machine "
            f"has {os.cpu_count()}; the app's threads share one interpreter lock, so near 1.0 means CPU-bound)")
        if cfg.rate_limit:
            out(f"rate limit: ideal N / (C/60) = {cfg.cap_seconds():.3f} s; prompts posted per minute after due: "
                f"{_per_minute(run.posted_at)}")
        out(f"slack calls during the engine run: chat.postMessage={posts_engine} (refused with 429: {refused}) "
            f"conversations.history={history_calls}")
        out("occurrences by kind and state: " + "; ".join(
            f"{kind}: " + ", ".join(f"{state}={n}" for state, n in sorted(c.items()))
            for kind, c in sorted(states.items())))
        if unexpected:
            out(f"WARNING: {unexpected} prompt message(s) carry keys that were not expected")

        # The plain sequential loop: the same messages, one call after another, same gateway and latency.
        fake.set_rate_limit(None)
        seq_seconds, seq_posts = _sequential(bot, fake, posted)
        out(f"sequential baseline{' (rate limit switched off)' if cfg.rate_limit else ''}: {seq_posts} "
            f"chat.postMessage one after another through the same gateway into fresh channels: {seq_seconds:.3f} s, "
            f"{seq_posts / seq_seconds if seq_seconds else float('nan'):.1f} prompts/s")

        def ratio(a: float, b: float) -> float:
            return a / b if b > 0 else float("nan")

        return Result(
            partnerships=cfg.partnerships, duplicates=duplicates, missing=missing, failed=failed,
            seconds=engine_seconds, limit_ratio=ratio(ideal, engine_seconds),
            vs_sequential=ratio(seq_seconds, engine_seconds),
            cpu_ms_per_post=ratio(run.cpu_seconds * 1000, cfg.partnerships),
            cap_ratio=ratio(cfg.cap_seconds(), engine_seconds) if cfg.rate_limit else None,
            extra={"refused": refused, "first_post": run.first_post, "cpu_seconds": run.cpu_seconds,
                   "sequential_seconds": seq_seconds, "states": states},
        )
    finally:
        if bot is not None:
            bot.close()
        fake.stop()
        if tmp is not None:
            tmp.cleanup()


@dataclass(frozen=True)
class EngineRun:
    seconds: float  # from the due instant to the last prompt stored by the fake
    first_post: float  # from the due instant to the first one
    planned_before_due: float  # how long before the due instant the plan job had planned every prompt
    cpu_seconds: float  # the app's CPU time from the due instant until every completion is recorded
    posted_at: dict[str, float]  # when the fake stored each prompt (time.monotonic)


def _run_engine(
    cfg: Config, bot: Partnerbot, clock: ShiftedClock, fake: RemoteFake, db: sa.Engine, due: datetime, out: Out,
) -> EngineRun:
    """Start the ticker `lead` (whole ticks) before the due instant, with the clock shifted so that a dispatch
    tick fires exactly at the due instant; wait until every prompt is posted (or nothing is left to run)."""
    ticks = max(1, math.ceil(cfg.lead_seconds / cfg.tick_seconds))
    lead = ticks * cfg.tick_seconds
    wall, mono = time.time(), time.monotonic()
    # The ticker's interval jobs fire at (start + k x tick): the k-th dispatch tick reads "now" = due.
    clock.offset = due.timestamp() - (wall + lead)
    fake.set_offset(clock.offset)
    t0 = mono + lead
    bot.start_scheduler()

    planned_at = float("nan")
    while time.monotonic() < t0 + cfg.deadline():
        if count_prompts(db) >= cfg.partnerships:
            planned_at = t0 - time.monotonic()
            break
        time.sleep(POLL_SECONDS)

    time.sleep(max(0.0, t0 - time.monotonic()))
    cpu, polling = time.process_time(), time.thread_time()  # this thread only polls: its CPU is not the app's
    deadline = t0 + cfg.deadline()
    checked = t0
    while True:
        done, expected, last = fake.watch_status()
        if done >= expected:
            break
        now = time.monotonic()
        if now > deadline:
            out(f"WARNING: gave up waiting after {cfg.deadline():.0f} s (--timeout)")
            break
        if now > checked + 1:
            checked = now
            if not count_prompts(db, OccurrenceState.PENDING, OccurrenceState.CLAIMED):
                break  # nothing left to run: some prompts did not make it (counted as missing / failed)
        time.sleep(POLL_SECONDS / 5)
    while count_prompts(db, OccurrenceState.PENDING, OccurrenceState.CLAIMED) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)  # the last completions are still being recorded
    cpu = (time.process_time() - cpu) - (time.thread_time() - polling)
    bot.ticker.stop()  # stop ticking; running occurrences complete first
    posted_at: dict[str, float] = fake.posted_at()
    first = min(posted_at.values(), default=float("nan"))
    seconds = last - t0 if last else time.monotonic() - t0
    return EngineRun(seconds=seconds, first_post=first - t0, planned_before_due=planned_at, cpu_seconds=cpu,
                     posted_at=posted_at)


def _per_minute(posted_at: dict[str, float]) -> list[int]:
    if not posted_at:
        return []
    start = min(posted_at.values())
    buckets = Counter(int((t - start) // 60) for t in posted_at.values())
    return [buckets.get(i, 0) for i in range(max(buckets) + 1)]


def _sequential(bot: Partnerbot, fake: RemoteFake, posted: Sequence[tuple[str, str, Any, Any]]) -> tuple[float, int]:
    """Re-post every prompt the engine stored (same text, blocks and metadata) into a fresh channel each,
    one chat.postMessage after another through the dispatcher's own gateway (same WebClient)."""
    gateway = bot.ticker.dispatcher.slack
    fresh = fake.add_channels([f"seq-{i:06d}" for i in range(len(posted))], [BOT_USER])
    started = time.monotonic()
    for channel, (_key, text, blocks, metadata) in zip(fresh, posted, strict=True):
        gateway.post(channel, text=text, blocks=blocks, metadata=metadata)
    return time.monotonic() - started, len(posted)


# -- command line ---------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> tuple[Config, bool]:
    parser = argparse.ArgumentParser(
        prog="python bench/checkin_fanout.py",
        description="N partnerships' check-in prompts due in the same minute, through the real planner, ticker "
                    "and dispatcher, against the fake Slack over HTTP.")
    parser.add_argument("--partnerships", type=int, default=1000, metavar="N", help="default 1000")
    parser.add_argument("--latency-ms", type=float, default=50.0, metavar="L", help="per Slack call, default 50")
    parser.add_argument("--workers", type=int, default=8, metavar="W", help="dispatcher worker threads, default 8")
    parser.add_argument("--rate-limit", action="store_true", help="Slack's limits under load (1/s per channel, "
                        "C/min per workspace)")
    parser.add_argument("--cap", type=int, default=300, metavar="C", help="workspace messages a minute, default 300")
    parser.add_argument("--database-url", default=None, help="an empty database (default: SQLite in a temp dir)")
    parser.add_argument("--tick-seconds", type=float, default=2.0, help="the ticker's interval, default 2.0")
    parser.add_argument("--lead-seconds", type=float, default=3.0,
                        help="start the ticker (and plan) this long before the due instant, default 3")
    parser.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    parser.add_argument("--verbose", action="store_true", help="show the scheduler's warnings (one per 429)")
    ns = parser.parse_args(argv)
    cfg = Config(partnerships=ns.partnerships, latency_ms=ns.latency_ms, workers=ns.workers, rate_limit=ns.rate_limit,
                 cap=ns.cap, database_url=ns.database_url, tick_seconds=ns.tick_seconds,
                 lead_seconds=ns.lead_seconds, timeout=ns.timeout)
    return cfg, ns.verbose


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from command-line arguments; prints the result line last. Returns 0, or 1 when any
    prompt was duplicated, missing or failed."""
    cfg, verbose = parse_args(argv)
    quiet = logging.getLogger("services.scheduling")
    level = quiet.level
    if not verbose:
        quiet.setLevel(logging.ERROR)  # a warning per 429 would drown the output
    try:
        result = run_benchmark(cfg, out=lambda line: print(line, flush=True))
    finally:
        quiet.setLevel(level)
    print(result.last_line(), flush=True)
    return 0 if result.duplicates == result.missing == result.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
