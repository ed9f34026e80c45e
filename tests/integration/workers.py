"""Real `python -m jobs.worker` processes against the in-process fake Slack, for the multi-process tests.

- `WorkerFleet` starts workers (each with a free PORT, in an empty directory so that no .env is read,
  with an environment cleared of every Partnerbot setting), SIGKILLs or SIGTERMs them, and kills any
  still running when the test ends.
- `seed_prompts` migrates a database and seeds active partnerships, each with its own channel in the
  fake and a check-in schedule whose slot for today is due now.
- `posted_messages` / `posted_count` read what was posted (the fake), `Db` what the database says, and
  `check_exactly_once` compares the two.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from models import Occurrence, Partnership
from models.checkin import CheckinSchedule
from models.db import make_engine, make_uow
from models.migrate import upgrade
from models.partnership import Member, PartnershipStatus, Role, Side
from services.checkins import prompt_key
from services.scheduling import CHECKIN_PROMPT, occurrence_key_of
from tests.fakes import FakeSlack

TEAM = "T0OURS"
BOT_USER = "UBOT"
START_TIMEOUT = 20.0  # seconds for a worker to import, migrate, check its token and start ticking
STOP_TIMEOUT = 10.0  # seconds from SIGTERM to exit
# Settings the worker reads: none of them may leak in from the environment running the tests.
_SETTINGS = {"DATABASE_URL", "HOST", "PORT", "LOG_LEVEL", "DEFAULT_TIMEZONE", "HTTP_THREADS"}
_SETTING_PREFIXES = ("SLACK_", "DATABASE_", "SCHEDULER_")
_RUNNING = re.compile(r"Partnerbot worker (\S+) is running")
# Local times of day at which "today's slot, due now" cannot run into the end of the local day (a
# prompt is never posted after its local day) nor into the start of it.
_SAFE_HOURS = range(2, 21)
_ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "America/Los_Angeles", "Asia/Kolkata",
          "Pacific/Auckland")

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, probe: Callable[[], T | None], timeout: float,
             describe: Callable[[], str] = lambda: "", interval: float = 0.02) -> T:
    """Poll `probe` until it returns something other than None; fail with `describe()` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:.0f}s. {describe()}")
        time.sleep(interval)


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int

    @property
    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def worker_id(self) -> str | None:
        """The dispatcher's id (what it writes into occurrence.claimed_by), once it is running."""
        found = _RUNNING.search(self.log)
        return found.group(1) if found else None

    def wait_running(self, timeout: float = START_TIMEOUT) -> str:
        def probe() -> str | None:
            wid = self.worker_id
            if wid is None and not self.alive:
                pytest.fail(f"worker {self.name} exited ({self.proc.returncode}) while starting:\n{self.log}")
            return wid

        return wait_for(f"start of worker {self.name}", probe, timeout, lambda: f"Its log:\n{self.log}")

    def sigkill(self) -> None:
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT)

    def sigterm(self) -> int:
        """SIGTERM; the exit code once it has exited (fails if it does not within STOP_TIMEOUT)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker {self.name} did not exit within {STOP_TIMEOUT}s of SIGTERM; its log:\n{self.log}")


@dataclass
class WorkerFleet:
    """Starts `python -m jobs.worker` processes with the given settings and cleans them all up."""

    workdir: Path
    settings: dict[str, str]
    started: list[Worker] = field(default_factory=list)

    def start(self) -> Worker:
        port = free_port()
        env = {k: v for k, v in os.environ.items()
               if not k.upper().startswith(_SETTING_PREFIXES) and k.upper() not in _SETTINGS
               and "PROXY" not in k.upper()}
        env.update(HOST="127.0.0.1", PORT=str(port), LOG_LEVEL="INFO", PYTHONUNBUFFERED="1", **self.settings)
        project = str(Path(__file__).resolve().parents[2])
        # The project is installed editable in the venv; PYTHONPATH makes the import independent of that.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (project, env.get("PYTHONPATH", "")) if p)
        cwd = self.workdir / "cwd"
        cwd.mkdir(parents=True, exist_ok=True)
        name = f"w{len(self.started)}"
        log_path = self.workdir / f"worker-{name}.log"
        with open(log_path, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "jobs.worker"], cwd=cwd, env=env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self.started.append(Worker(name, proc, log_path, port))
        return self.started[-1]

    @property
    def alive(self) -> list[Worker]:
        return [w for w in self.started if w.alive]

    def kill_all(self) -> None:
        for w in self.started:
            if w.alive:
                w.proc.kill()
        for w in self.started:
            try:
                w.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
                pass

    def logs(self) -> str:
        return "\n".join(f"----- worker {w.name} (exit {w.proc.poll()}) -----\n{w.log[-4000:]}" for w in self.started)

    def tracebacks(self) -> list[str]:
        return [f"{w.name}:\n{w.log}" for w in self.started if "Traceback" in w.log]

    def count_in_logs(self, pattern: str) -> int:
        return sum(len(re.findall(pattern, w.log)) for w in self.started)


# -- seeding -------------------------------------------------------------------------------------------
def due_now_zone(now: datetime) -> str:
    """A time zone where the local time of day is well inside the day."""
    for zone in _ZONES:
        if now.astimezone(ZoneInfo(zone)).hour in _SAFE_HOURS:
            return zone
    raise AssertionError(f"no zone among {_ZONES} has a local hour in {_SAFE_HOURS} at {now}")  # pragma: no cover


def seed_prompts(database_url: str, fake: FakeSlack, count: int, *, now: datetime | None = None) -> dict[str, str]:
    """Migrate the database and seed `count` active partnerships whose check-in for today is due now (all
    weekdays, this minute, local time). Returns the expected prompt occurrence keys -> channel ids."""
    now = now or datetime.now(UTC)
    zone = due_now_zone(now)
    local = now.astimezone(ZoneInfo(zone))
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        uow = make_uow(engine)
        expected: dict[str, str] = {}
        with uow() as s:
            for i in range(count):
                owner = f"UOWN{i:05d}"
                fake.add_user(owner, f"owner{i}", team_id=TEAM)
                channel = fake.add_channel(f"partner-mp-{i}", members=[BOT_USER, owner])
                p = Partnership(name=f"Multi {i}", open_name_key=f"multi {i}", timezone=zone,
                                status=PartnershipStatus.ACTIVE, team_id=TEAM, channel_id=channel,
                                channel_name=f"partner-mp-{i}", created_by=owner)
                s.add(p)
                s.flush()
                assert p.id is not None
                s.add(Member(partnership_id=p.id, user_id=owner, role=Role.OWNER, side=Side.OURS, added_by=owner))
                s.add(CheckinSchedule(partnership_id=p.id, weekdays="mon,tue,wed,thu,fri,sat,sun",
                                      local_time=f"{local:%H:%M}", timezone=zone, version=1,
                                      effective_from=now - timedelta(days=1), updated_by=owner))
                expected[prompt_key(p.id, local.date())] = channel
    finally:
        engine.dispose()
    return expected


# -- reading the outcome ------------------------------------------------------------------------------
def posted_messages(fake: FakeSlack, channels: set[str]) -> dict[str, list[tuple[str, str]]]:
    """Occurrence key -> [(channel, ts)] of every top-level message in `channels` that carries one."""
    found: dict[str, list[tuple[str, str]]] = {}
    for channel in sorted(channels):
        for m in fake.messages(channel):
            key = occurrence_key_of(m.get("metadata"))
            if key is not None:
                found.setdefault(key, []).append((channel, str(m["ts"])))
    return found


def posted_count(fake: FakeSlack) -> int:
    """How many messages the fake holds in all channels (cheap enough to poll)."""
    with fake.lock:
        return sum(len(ch.messages) for ch in fake.channels.values())


class Db:
    """A connection pool to the test's database, for polling occurrence rows while workers run."""

    def __init__(self, database_url: str) -> None:
        # A plain engine: on SQLite, reading in WAL mode needs no BEGIN IMMEDIATE (make_engine's), so
        # polling never holds the write lock the worker needs.
        self.engine = sa.create_engine(database_url)

    def prompts(self, keys: set[str] | None = None) -> dict[str, Occurrence]:
        """The check-in prompt occurrences (all, or those with these keys), by key."""
        with Session(self.engine, expire_on_commit=False) as s:
            query = select(Occurrence).where(col(Occurrence.kind) == CHECKIN_PROMPT)
            if keys is not None:
                query = query.where(col(Occurrence.key).in_(sorted(keys)))
            return {o.key: o for o in s.exec(query).all()}

    def close(self) -> None:
        self.engine.dispose()


def states(rows: dict[str, Occurrence]) -> Counter[str]:
    return Counter(str(o.state) for o in rows.values())


def check_exactly_once(fake: FakeSlack, expected: dict[str, str], rows: dict[str, Occurrence]) -> None:
    """Every expected key: one message, in its channel, and the occurrence done with that message's ts.
    Nothing else carries an occurrence key, and no prompt occurrence failed."""
    posted = posted_messages(fake, set(expected.values()))
    duplicates = {k: v for k, v in posted.items() if len(v) > 1}
    missing = sorted(k for k in expected if k not in posted)
    unexpected = sorted(k for k in posted if k not in expected)
    wrong_channel = sorted(k for k, v in posted.items() if k in expected and v[0][0] != expected[k])
    assert not duplicates, f"{len(duplicates)} occurrence(s) posted more than once: {sorted(duplicates.items())[:10]}"
    assert not missing, f"{len(missing)} occurrence(s) never posted: {missing[:10]}"
    assert not unexpected, f"messages for unexpected occurrences: {unexpected[:10]}"
    assert not wrong_channel, f"posted in the wrong channel: {wrong_channel[:10]}"
    failed = sorted(k for k, o in rows.items() if o.state == "failed")
    assert not failed, f"failed occurrences: {[(k, rows[k].last_error) for k in failed[:10]]}"
    not_done = sorted(k for k in expected if k not in rows or rows[k].state != "done")
    assert not not_done, f"not done: {[(k, rows[k].state if k in rows else None) for k in not_done[:10]]}"
    mismatched = sorted(k for k in expected if (rows[k].result_channel, rows[k].result_ts) != posted[k][0])
    assert not mismatched, (
        "occurrences whose recorded (channel, ts) is not the message posted for them: "
        f"{[(k, rows[k].result_channel, rows[k].result_ts, posted[k]) for k in mismatched[:10]]}"
    )
