"""Several real worker processes, random SIGKILLs: every scheduled post still happens exactly once.

Each test runs `python -m jobs.worker` processes against the in-process fake Slack (with some latency,
so that kills land mid-work) and a database seeded with check-in prompts due now:

- PostgreSQL: three workers share the database; random workers are SIGKILLed at random moments and
  replaced, a few times.
- SQLite: one worker at a time (a second one refuses to start while the first holds the database);
  each is SIGKILLed at a random moment and the next one takes over.
- In both, the answers to a few posts are lost on the way back (the connection drops after Slack stored
  the post): the worker must neither re-send them blindly nor give up on them.
- Deterministically: a kill right after Slack stored a post but before the worker heard back (so before
  it completed the occurrence), and a post whose answer was lost still backing off when a new worker
  starts (and plans): the new worker finds both messages by their metadata and adopts them.

The end state is checked against both sides: one message per occurrence key in its channel, none
missing, none failed, and each occurrence done with the ts of that message. Random choices come from a
seed printed at the start (and recorded as a test property); set PARTNERBOT_TEST_SEED to replay one.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from services.scheduling import occurrence_key_of
from tests.fakes import FakeSlack
from tests.integration.workers import (
    BOT_USER,
    START_TIMEOUT,
    TEAM,
    Db,
    WorkerFleet,
    check_exactly_once,
    posted_count,
    posted_messages,
    seed_prompts,
    states,
    wait_for,
)

LATENCY_MS = 30  # per Slack call, so that a kill finds posts in flight
TICK_SECONDS = "0.2"
LEASE_SECONDS = "5"  # the minimum: how long a killed worker's claims wait before another takes them
THREADS = "4"  # SCHEDULER_WORKERS per process
DONE_TIMEOUT = 60.0  # seconds for all prompts to be done once the chaos is over
ADOPTED = "was already posted"  # what a worker logs when it finds an occurrence's message and adopts it


@pytest.fixture
def rng(record_property: Any) -> random.Random:
    seed = int(os.environ.get("PARTNERBOT_TEST_SEED") or random.SystemRandom().randrange(2**32))
    print(f"random seed: {seed} (replay with PARTNERBOT_TEST_SEED={seed})")
    record_property("seed", seed)
    return random.Random(seed)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    fake = FakeSlack(bot_token="xoxb-test", team_id=TEAM, bot_user_id=BOT_USER, latency_ms=LATENCY_MS).start()
    yield fake
    fake.after_success = None
    fake.stop()


@pytest.fixture
def fleets() -> Iterator[list[WorkerFleet]]:
    """Every fleet a test registers here has all its processes killed at the end, whatever happened."""
    registered: list[WorkerFleet] = []
    yield registered
    for fleet in registered:
        fleet.kill_all()


def fleet_for(fleets: list[WorkerFleet], tmp_path: Path, fake: FakeSlack, database_url: str) -> WorkerFleet:
    fleet = WorkerFleet(tmp_path, {
        "SLACK_BOT_TOKEN": fake.bot_token, "SLACK_API_URL": fake.base_url, "DATABASE_URL": database_url,
        "SCHEDULER_TICK_SECONDS": TICK_SECONDS, "SCHEDULER_LEASE_SECONDS": LEASE_SECONDS,
        "SCHEDULER_WORKERS": THREADS,
    })
    fleets.append(fleet)
    return fleet


def drop_answers(fake: FakeSlack, keys: Sequence[str]) -> set[str]:
    """Slack stores the first post of each of these occurrences, then the connection drops before the
    answer is sent. Returns the set of keys whose answer was dropped so far (filled in as it happens)."""
    dropped: set[str] = set()
    lock = threading.Lock()

    def hook(method: str, args: dict[str, Any], body: dict[str, Any]) -> None:
        key = occurrence_key_of(args.get("metadata")) if method == "chat.postMessage" else None
        if key in keys:
            with lock:
                first = key not in dropped
                dropped.add(key)
            if first:
                raise ConnectionResetError("the answer to this post is lost")  # the fake closes, answerless

    fake.after_success = hook
    return dropped


def posts_reach(fake: FakeSlack, count: int) -> Callable[[], bool | None]:
    return lambda: True if posted_count(fake) >= count else None


def wait_all_done(db: Db, expected: dict[str, str], fleet: WorkerFleet, timeout: float = DONE_TIMEOUT) -> None:
    keys = set(expected)

    def probe() -> bool | None:
        rows = db.prompts(keys)
        return True if len(rows) == len(keys) and all(o.state == "done" for o in rows.values()) else None

    def describe() -> str:
        rows = db.prompts(keys)
        stuck = sorted((o.key, str(o.state), o.claimed_by, o.attempts, o.last_error)
                       for o in rows.values() if o.state != "done")
        return (f"{len(keys) - len(rows)} not planned; states: {dict(states(rows))}; "
                f"first not done: {stuck[:5]}\n{fleet.logs()}")

    wait_for("completion of every prompt", probe, timeout, describe, interval=0.2)


def no_tracebacks(fleet: WorkerFleet) -> None:
    found = fleet.tracebacks()
    assert not found, "a worker logged a traceback:\n" + "\n".join(found)


def stop_survivors(fleet: WorkerFleet) -> None:
    """SIGTERM the workers still running: each exits 0, having logged that it stopped."""
    for w in fleet.alive:
        code = w.sigterm()
        assert code == 0, f"worker {w.name} exited {code} on SIGTERM:\n{w.log}"
        assert "Stopped." in w.log, w.log


def check_outcome(fake: FakeSlack, db: Db, expected: dict[str, str], fleet: WorkerFleet, dropped: set[str],
                  lossy: Sequence[str]) -> None:
    check_exactly_once(fake, expected, db.prompts())
    assert dropped == set(lossy), f"answers meant to be lost: {sorted(lossy)}, lost: {sorted(dropped)}"
    rows = db.prompts()
    retried = sorted(k for k, o in rows.items() if o.attempts > 1)
    print(f"{len(retried)} prompts ran more than once (after a kill or a lost answer); "
          f"{fleet.count_in_logs(ADOPTED)} times a worker found a prompt already posted and adopted it")
    assert set(lossy) <= set(retried), "a post whose answer was lost was not retried"
    no_tracebacks(fleet)


@pytest.mark.postgres
def test_three_postgres_workers_with_random_kills_post_every_prompt_exactly_once(
    pg_url: str, tmp_path: Path, fake: FakeSlack, fleets: list[WorkerFleet], rng: random.Random,
) -> None:
    count, kills = 300, 5
    expected = seed_prompts(pg_url, fake, count)
    lossy = rng.sample(list(expected)[: count // 10], 3)  # seeded and claimed in id order: posted early
    dropped = drop_answers(fake, lossy)
    fleet = fleet_for(fleets, tmp_path, fake, pg_url)
    db = Db(pg_url)
    try:
        for _ in range(3):
            fleet.start()
        # Kill when the posts reach random marks between 5% and 80% of all, so that work is in flight.
        marks = sorted(rng.sample(range(count // 20, count * 4 // 5), kills))
        at_kill: list[int] = []
        for mark in marks:
            wait_for(f"{mark} posts", posts_reach(fake, mark), START_TIMEOUT + 10, fleet.logs)
            time.sleep(rng.uniform(0, 0.2))
            victim = rng.choice(fleet.alive)
            victim.sigkill()
            at_kill.append(posted_count(fake))
            fleet.start()  # a replacement: three stay alive
        print(f"killed {kills} workers at {at_kill} of {count} posts")
        assert sum(1 for n in at_kill if n < count) >= kills // 2, f"the kills came too late: {at_kill}"

        wait_all_done(db, expected, fleet)
        check_outcome(fake, db, expected, fleet, dropped, lossy)
        assert len(fleet.alive) == 3
        stop_survivors(fleet)
    finally:
        db.close()


def test_sqlite_workers_in_turn_with_random_kills_post_every_prompt_exactly_once(
    sqlite_url: str, tmp_path: Path, fake: FakeSlack, fleets: list[WorkerFleet], rng: random.Random,
) -> None:
    count, kills = 200, 5
    expected = seed_prompts(sqlite_url, fake, count)
    lossy = rng.sample(list(expected)[: count // 10], 2)
    dropped = drop_answers(fake, lossy)
    fleet = fleet_for(fleets, tmp_path, fake, sqlite_url)
    db = Db(sqlite_url)
    try:
        current = fleet.start()
        at_kill: list[int] = []
        for _ in range(kills):
            if rng.random() < 0.2:  # now and then while it is still starting up
                time.sleep(rng.uniform(0.05, 1.0))
            else:  # mostly once it has posted a random number of prompts
                goal = min(posted_count(fake) + rng.randint(5, count // (kills + 1)), count)
                wait_for(f"{goal} posts", posts_reach(fake, goal), START_TIMEOUT + 10, fleet.logs)
                time.sleep(rng.uniform(0, 0.1))
            current.sigkill()
            at_kill.append(posted_count(fake))
            current = fleet.start()  # the killed one's lock went with it
        print(f"killed {kills} workers at {at_kill} of {count} posts")
        assert sum(1 for n in at_kill if n < count) >= kills // 2, f"the kills came too late: {at_kill}"

        wait_all_done(db, expected, fleet)
        check_outcome(fake, db, expected, fleet, dropped, lossy)

        # SQLite means one process: another worker refuses to start while this one holds the database.
        other = fleet.start()
        code = other.proc.wait(timeout=START_TIMEOUT)
        assert code != 0, other.log
        assert "another partnerbot process" in other.log.lower(), other.log
        assert "sqlite database" in other.log.lower(), other.log
        assert fleet.alive == [current]
        stop_survivors(fleet)
    finally:
        db.close()


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"])
def test_a_worker_killed_between_post_and_completion_is_adopted_not_reposted(
    backend: str, request: pytest.FixtureRequest, sqlite_url: str, tmp_path: Path, fake: FakeSlack,
    fleets: list[WorkerFleet], rng: random.Random,
) -> None:
    """`held`: Slack stored the post, the worker is killed before it hears back. `lossy`: Slack stored the
    post, the answer was lost, the worker noted that and backs off; then a new worker starts (and plans,
    as every worker does at start) during that backoff. Both must be found in the channel and adopted."""
    url = request.getfixturevalue("pg_url") if backend == "postgres" else sqlite_url
    expected = seed_prompts(url, fake, 12)
    held, lossy = rng.sample(sorted(expected), 2)
    fleet = fleet_for(fleets, tmp_path, fake, url)
    db = Db(url)
    blocked, release, armed = threading.Event(), threading.Event(), threading.Lock()
    dropped = threading.Event()

    def hook(method: str, args: dict[str, Any], body: dict[str, Any]) -> None:
        key = occurrence_key_of(args.get("metadata")) if method == "chat.postMessage" else None
        if key == held and armed.acquire(False):  # hold the answer until the worker that asked is dead
            blocked.set()
            release.wait(timeout=60)
            raise ConnectionResetError("nobody waits for this answer any more")  # closed without writing
        if key == lossy and not dropped.is_set():
            dropped.set()
            raise ConnectionResetError("the answer to this post is lost")  # the fake closes, answerless

    fake.after_success = hook
    try:
        try:
            first = fleet.start()  # the only worker running: the one that made both calls

            def both_happened() -> bool | None:
                if not first.alive:
                    pytest.fail(f"the worker exited ({first.proc.returncode}):\n{first.log}")
                if not (blocked.is_set() and dropped.is_set()):
                    return None
                return True if db.prompts({lossy})[lossy].state != "claimed" else None

            wait_for(f"the posts of {held} and {lossy}", both_happened, START_TIMEOUT + 10, fleet.logs)
            first.sigkill()
        finally:
            release.set()
        for key in (held, lossy):
            assert len(posted_messages(fake, {expected[key]}).get(key, [])) == 1, key
        rows = db.prompts({held, lossy})
        assert (rows[held].state, rows[held].result_ts) == ("claimed", None)  # posted, never completed
        assert rows[lossy].state == "pending", rows[lossy]  # to be retried, after a backoff

        second = fleet.start()
        second_id = second.wait_running()
        assert db.prompts({lossy})[lossy].state == "pending", "the retry ran before the new worker started"
        wait_all_done(db, expected, fleet)
        check_exactly_once(fake, expected, db.prompts())
        rows = db.prompts({held, lossy})
        for key in (held, lossy):
            assert rows[key].attempts >= 2, (key, rows[key].attempts)
            assert rows[key].claimed_by == second_id, key
            assert f"occurrence {key} {ADOPTED}" in second.log, second.log
        no_tracebacks(fleet)
        stop_survivors(fleet)
    finally:
        db.close()
