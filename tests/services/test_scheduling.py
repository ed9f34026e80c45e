"""The scheduling engine with a frozen clock: claims and leases, fencing, reconciliation after a crash,
misfire rules, coalescing, retries with backoff, rate limits, failures, and re-planning."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from adapters.slack import SlackGateway, make_client
from jobs.ticker import Ticker
from models.db import make_uow
from models.scheduling import Occurrence, OccurrenceState
from services.scheduling import (
    Claim,
    Completion,
    Dispatcher,
    Executor,
    MisfirePolicy,
    RunContext,
    collection_paused,
    insert_new,
    mark_obsolete,
    request_run,
    scheduler_status,
    upsert_planned,
)
from tests.fakes import FakeSlack
from tests.support.clock import FrozenClock

T0 = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
KIND = "toy"


@dataclass
class ToyExecutor:
    """Posts one message per occurrence into the channel in its payload; records what it did."""

    ran: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    crash: set[str] = field(default_factory=set)  # keys whose run raises a bug once

    def run(self, occ: Occurrence, ctx: RunContext) -> Completion:
        self.ran.append(occ.key)
        if occ.key in self.crash:
            self.crash.discard(occ.key)
            raise RuntimeError("a bug")
        channel, ts = ctx.post(occ.payload["channel"], text=f"post for {occ.key}")
        return Completion.done(channel, ts)

    def on_failure(self, s: Session, occ: Occurrence, error: str) -> None:
        self.failures.append((occ.key, error))


@dataclass
class Env:
    fake: FakeSlack
    clock: FrozenClock
    engine: Engine
    toy: ToyExecutor
    channel: str

    def uow(self) -> Any:
        return make_uow(self.engine)()

    def dispatcher(self, policy: MisfirePolicy | None = None, **kw: Any) -> Dispatcher:
        slack = SlackGateway(make_client("xoxb-test", self.fake.base_url, retries=False))
        executor = Executor(self.toy.run, policy or MisfirePolicy(grace=None), self.toy.on_failure)
        return Dispatcher(uow=make_uow(self.engine), slack=slack, clock=self.clock, executors={KIND: executor}, **kw)

    def plan(self, key: str, due: datetime, **extra: Any) -> None:
        with self.uow() as s:
            insert_new(s, [{"key": key, "kind": KIND, "subject_id": extra.pop("subject_id", 1), "due_at": due,
                            "payload": {"channel": self.channel}, **extra}], self.clock.now())

    def occ(self, key: str) -> Occurrence:
        with self.uow() as s:
            return s.exec(select(Occurrence).where(Occurrence.key == key)).one()

    def posts(self, key: str) -> int:
        return sum(1 for m in self.fake.messages(self.channel)
                   if (m.get("metadata") or {}).get("event_payload", {}).get("occurrence_key") == key)


@pytest.fixture
def env(engine: Engine) -> Iterator[Env]:
    clock = FrozenClock(T0)
    fake = FakeSlack(clock=clock.epoch).start()
    channel = fake.add_channel("partner-toy", members=["UBOT"])
    yield Env(fake, clock, engine, ToyExecutor(), channel)
    fake.stop()


def test_due_occurrences_run_once_and_future_ones_wait(env: Env) -> None:
    d = env.dispatcher()
    env.plan("a", T0 - timedelta(minutes=1))
    env.plan("b", T0 + timedelta(minutes=5))
    assert d.run_once() == 1
    assert d.run_once() == 0  # nothing twice
    assert env.posts("a") == 1 and env.posts("b") == 0
    assert env.occ("a").state == OccurrenceState.DONE and env.occ("a").result_ts
    env.clock.advance(minutes=5)
    assert d.run_once() == 1 and env.posts("b") == 1


def test_a_claim_is_exclusive_until_its_lease_expires(env: Env) -> None:
    a, b = env.dispatcher(worker_id="a"), env.dispatcher(worker_id="b")
    env.plan("x", T0)
    [claim] = a.claim(10)
    assert b.claim(10) == []  # held by a
    env.clock.advance(seconds=119)
    assert b.claim(10) == []
    env.clock.advance(seconds=2)
    [taken] = b.claim(10)  # a's lease expired: b takes over and must look before posting
    assert taken.reconcile and taken.occ.attempts == 2
    # a finally finishes: its completion is fenced off, b's stands.
    assert a.complete(claim.occ, Completion.done("C", "1.0")) is False
    assert b.complete(taken.occ, Completion.done("C", "2.0")) is True
    assert env.occ("x").result_ts == "2.0"


def test_a_worker_that_dies_after_posting_is_not_repeated_by_the_next(env: Env) -> None:
    first, second = env.dispatcher(worker_id="first"), env.dispatcher(worker_id="second")
    env.plan("x", T0)
    [claim] = first.claim(1)
    # It posts and dies before completing.
    ctx = RunContext(occ=claim.occ, slack=first.slack, now=env.clock.now(), reconcile=False)
    _, posted_ts = ctx.post(env.channel, text="post for x")
    env.clock.advance(minutes=3)
    assert second.run_once() == 1
    assert env.posts("x") == 1
    occ = env.occ("x")
    assert occ.state == OccurrenceState.DONE and occ.result_ts == posted_ts and occ.attempts == 2


def test_a_missed_occurrence_past_its_window_is_skipped_not_run(env: Env) -> None:
    d = env.dispatcher()
    env.plan("late", T0 - timedelta(hours=3), not_after=T0 - timedelta(hours=1))
    d.run_once()
    assert env.toy.ran == [] and env.posts("late") == 0
    occ = env.occ("late")
    assert occ.state == OccurrenceState.SKIPPED and "missed its window" in (occ.last_error or "")


def test_of_several_due_only_the_newest_runs_when_the_kind_coalesces(env: Env) -> None:
    d = env.dispatcher(MisfirePolicy(grace=timedelta(days=3), coalesce=True))
    for days in (3, 2, 1):
        env.plan(f"day-{days}", T0 - timedelta(days=days))
    env.plan("other-subject", T0 - timedelta(days=2), subject_id=2)
    d.run_once()
    assert sorted(env.toy.ran) == ["day-1", "other-subject"]
    assert env.occ("day-3").state == OccurrenceState.SKIPPED
    assert "superseded" in (env.occ("day-2").last_error or "")


def test_failures_back_off_then_fail_for_good_and_tell_people(env: Env) -> None:
    policy = MisfirePolicy(grace=None, max_failures=3, backoff_base=timedelta(seconds=10))
    d = env.dispatcher(policy)
    env.plan("x", T0)
    env.fake.fail("chat.postMessage", "internal_error", times=10)
    d.run_once()
    occ = env.occ("x")
    assert occ.state == OccurrenceState.PENDING and occ.run_at == T0 + timedelta(seconds=10)
    assert "internal_error" in (occ.last_error or "")
    env.clock.advance(seconds=9)
    assert d.run_once() == 0  # still backing off
    env.clock.advance(seconds=1)
    d.run_once()
    assert env.occ("x").run_at == env.clock.now() + timedelta(seconds=20)
    env.clock.advance(seconds=20)
    d.run_once()
    occ = env.occ("x")
    assert occ.state == OccurrenceState.FAILED and "internal_error" in (occ.last_error or "")
    assert env.toy.failures == [("x", "internal_error")]
    assert scheduler_status(make_uow(env.engine), env.clock)["failed"] == 1


def test_a_failed_post_whose_window_closed_before_its_retry_tells_people_the_slack_error(env: Env) -> None:
    d = env.dispatcher()
    env.plan("x", T0, not_after=T0 + timedelta(seconds=5))
    env.fake.fail("chat.postMessage", "internal_error", status=500)  # Slack may have posted it
    d.run_once()
    env.clock.advance(seconds=10)  # the retry comes after the window: it only looks, finds nothing
    d.run_once()
    assert env.posts("x") == 0 and env.occ("x").state == OccurrenceState.FAILED
    assert env.toy.failures == [("x", "internal_error")]  # the code that advice and notices understand


def test_an_error_retrying_cannot_fix_fails_at_once(env: Env) -> None:
    d = env.dispatcher()
    env.plan("x", T0)
    env.fake.channels[env.channel].members.discard("UBOT")  # the bot was removed from the channel
    d.run_once()
    assert env.occ("x").state == OccurrenceState.FAILED
    assert env.toy.failures == [("x", "not_in_channel")]


def test_a_rate_limit_backs_off_that_occurrence_only(env: Env) -> None:
    d = env.dispatcher(workers=1)
    env.plan("limited", T0)
    env.plan("next", T0 + timedelta(seconds=1))
    env.clock.advance(seconds=1)
    env.fake.fail("chat.postMessage", "ratelimited", status=429, headers={"Retry-After": "30"})
    d.run_once()
    limited = env.occ("limited")
    assert limited.state == OccurrenceState.PENDING and limited.run_at == env.clock.now() + timedelta(seconds=30)
    assert limited.failures == 0 and limited.payload == {"channel": env.channel}  # a rate limit is not a failure
    assert env.posts("next") == 1  # the dispatcher went on with the others
    env.clock.advance(seconds=30)
    d.run_once()
    assert env.posts("limited") == 1 and env.occ("limited").state == OccurrenceState.DONE


def test_a_bug_in_one_occurrence_is_retried_and_looks_before_posting_again(env: Env) -> None:
    d = env.dispatcher()
    env.plan("x", T0)
    env.toy.crash.add("x")
    d.run_once()
    assert env.occ("x").maybe_posted_at == T0  # the attempt may have posted: look first next time
    env.clock.advance(seconds=10)
    d.run_once()
    assert env.posts("x") == 1 and env.occ("x").state == OccurrenceState.DONE
    assert env.fake.call_count("conversations.history") == 1


def test_a_connection_error_after_the_post_reached_slack_does_not_post_twice(env: Env) -> None:
    d = env.dispatcher()
    env.plan("x", T0)
    dropped: list[bool] = []

    def drop_first_answer(method: str, args: dict[str, Any], body: dict[str, Any]) -> None:
        if method == "chat.postMessage" and not dropped:
            dropped.append(True)
            raise ConnectionResetError("the answer is lost on the way back")

    env.fake.after_success = drop_first_answer
    d.run_once()
    env.fake.after_success = None
    env.clock.advance(minutes=1)
    d.run_once()
    assert env.posts("x") == 1 and env.occ("x").state == OccurrenceState.DONE


def test_replanning_moves_pending_rows_but_never_back_to_an_older_plan(env: Env) -> None:
    now = env.clock.now()
    row = {"key": "p", "kind": KIND, "subject_id": 7, "payload": {"channel": env.channel}}
    with env.uow() as s:
        upsert_planned(s, [{**row, "due_at": now + timedelta(hours=1), "revision": 1}], now)
        upsert_planned(s, [{**row, "due_at": now + timedelta(hours=2), "revision": 2}], now)
        upsert_planned(s, [{**row, "due_at": now + timedelta(hours=3), "revision": 1}], now)  # a stale planner
    assert env.occ("p").due_at == now + timedelta(hours=2)
    with env.uow() as s:
        assert mark_obsolete(s, kinds=[KIND], subject_id=7, now=now, note="changed") == 1
    assert env.occ("p").state == OccurrenceState.OBSOLETE
    with env.uow() as s:
        upsert_planned(s, [{**row, "due_at": now + timedelta(hours=4), "revision": 3}], now)
    occ = env.occ("p")
    assert occ.state == OccurrenceState.PENDING and occ.due_at == now + timedelta(hours=4)


class Statements:
    """The INSERT, UPDATE and SELECT statements an engine sends to its driver (an executemany counts once)."""

    def __init__(self, engine: Engine) -> None:
        self.sent: list[str] = []
        self.engine = engine
        sa.event.listen(engine, "before_cursor_execute", self._on)

    def _on(self, _conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "SELECT"):
            self.sent.append(statement)

    def take(self) -> list[str]:
        sent, self.sent = self.sent, []
        return sent


@pytest.mark.parametrize("database", ["engine", "pg_engine"])
def test_a_full_planning_pass_writes_only_what_changes_in_one_read_and_one_write(
    request: pytest.FixtureRequest, database: str,
) -> None:
    engine: Engine = request.getfixturevalue(database)
    uow = make_uow(engine)
    now = T0

    def row(key: str, hours: int, revision: int, **extra: Any) -> dict[str, Any]:
        return {"key": key, "kind": KIND, "subject_id": 1, "due_at": now + timedelta(hours=hours),
                "revision": revision, **extra}

    with uow() as s:
        upsert_planned(s, [row("same", 1, 2), row("older", 1, 1), row("ran", 1, 1), row("obsolete", 1, 1)], now)
        insert_new(s, [row("recap", 1, 0)], now)
    with uow() as s:
        s.execute(sa.update(Occurrence).where(col(Occurrence.key) == "ran").values(state=OccurrenceState.DONE.value))
        mark_obsolete(s, kinds=[KIND], subject_id=1, now=now, note="changed", due_after=now)
        s.execute(sa.update(Occurrence).where(col(Occurrence.key).in_(["same", "older"]))
                  .values(state=OccurrenceState.PENDING.value))
    statements = Statements(engine)
    later = now + timedelta(minutes=5)
    # Rows with and without a not_after, as a planner plans a reminder and an overdue note together.
    planned = [row("same", 9, 2), row("older", 2, 2, not_after=now + timedelta(hours=3)), row("ran", 2, 2),
               row("obsolete", 2, 2), row("new", 4, 1, not_after=now + timedelta(hours=5)), row("new-2", 5, 1)]
    with uow() as s:
        upsert_planned(s, planned, later, skip_planned=True)
        insert_new(s, [row("recap", 7, 0), row("recap-2", 7, 0)], later, skip_planned=True)
    sent = statements.take()
    assert len(sent) == 4, sent  # per call: one read of the keys, one write of the rows that change

    with uow() as s:
        got = {o.key: o for o in s.exec(select(Occurrence)).all()}
    assert got["same"].due_at == now + timedelta(hours=1)  # the same revision: left as it was
    assert (got["older"].due_at, got["older"].revision, got["older"].not_after) == (
        now + timedelta(hours=2), 2, now + timedelta(hours=3))  # a newer plan moves it
    assert got["ran"].state == OccurrenceState.DONE and got["ran"].revision == 1  # what ran is never touched
    assert got["obsolete"].state == OccurrenceState.PENDING and got["obsolete"].revision == 2
    assert got["new"].not_after == now + timedelta(hours=5) and got["new-2"].not_after is None
    assert got["new-2"].created_at == later and got["older"].updated_at == later
    assert got["recap"].due_at == now + timedelta(hours=1) and got["recap-2"].due_at == now + timedelta(hours=7)

    statements.take()
    with uow() as s:  # the same pass again: nothing changes, nothing is written
        upsert_planned(s, planned, later, skip_planned=True)
        insert_new(s, [row("recap", 7, 0), row("recap-2", 7, 0)], later, skip_planned=True)
    assert [q.lstrip().split(None, 1)[0].upper() for q in statements.take()] == ["SELECT", "SELECT"]

    with uow() as s:  # a run requested again: the row that ran is pending once more, under a new revision
        request_run(s, [row("ran", 0, 0)], later)
    with uow() as s:
        ran = s.exec(select(Occurrence).where(Occurrence.key == "ran")).one()
    assert (ran.state, ran.revision, ran.run_at) == (OccurrenceState.PENDING, 2, now)


@pytest.mark.parametrize("database", ["engine", "pg_engine"])
def test_planned_rows_are_written_as_given(request: pytest.FixtureRequest, database: str) -> None:
    """What the planners write reaches the table unchanged: a time given in another zone is the same instant,
    payloads that differ only in 1 and true stay apart, and the defaults (run_at = due_at, pending, revision 0)."""
    uow = make_uow(request.getfixturevalue(database))
    now = T0
    berlin = datetime(2026, 3, 9, 10, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # 09:00 UTC
    rows = [{"key": "zone", "kind": KIND, "subject_id": 1, "due_at": berlin, "payload": {"n": 1}},
            {"key": "utc", "kind": KIND, "subject_id": 2, "due_at": berlin.astimezone(UTC), "payload": {"n": True},
             "not_after": now + timedelta(hours=3), "revision": 4},
            {"key": "later", "kind": KIND, "subject_id": 2, "due_at": now, "run_at": now + timedelta(minutes=5),
             "payload": {"people": ["U1", "U2"]}}]
    with uow() as s:
        upsert_planned(s, rows[:2], now)
        insert_new(s, rows[2:], now)
    with uow() as s:
        got = {o.key: o for o in s.exec(select(Occurrence)).all()}
    assert got["zone"].due_at == got["zone"].run_at == datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    assert got["utc"].due_at == got["zone"].due_at
    assert (got["zone"].payload, got["utc"].payload) == ({"n": 1}, {"n": True})
    assert type(got["zone"].payload["n"]) is int and got["utc"].payload["n"] is True
    assert (got["zone"].not_after, got["zone"].revision, got["zone"].state) == (None, 0, OccurrenceState.PENDING)
    assert (got["utc"].not_after, got["utc"].revision) == (now + timedelta(hours=3), 4)
    assert (got["later"].due_at, got["later"].run_at, got["later"].payload) == (
        now, now + timedelta(minutes=5), {"people": ["U1", "U2"]})
    assert got["later"].created_at == got["later"].updated_at == now and got["later"].attempts == 0


def test_a_planning_pass_pauses_the_garbage_collector_and_gives_it_back_as_it_was() -> None:
    was = gc.isenabled()
    try:
        gc.enable()
        with collection_paused():
            assert not gc.isenabled()
            with collection_paused():  # a pass inside a pass (or two at once) shares the pause
                assert not gc.isenabled()
            assert not gc.isenabled()
        assert gc.isenabled()
        gc.disable()  # switched off by someone else: a pass leaves it off
        with collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()


def test_health_reports_last_tick_and_due_but_unclaimed(env: Env) -> None:
    uow = make_uow(env.engine)
    assert scheduler_status(uow, env.clock) == {"last_tick": None, "seconds_since_last_tick": None,
                                                "due_unclaimed": 0, "failed": 0}
    env.plan("x", T0)
    assert scheduler_status(uow, env.clock)["due_unclaimed"] == 1
    env.dispatcher().run_once()
    env.clock.advance(seconds=3)
    status = scheduler_status(uow, env.clock)
    assert status["due_unclaimed"] == 0 and status["seconds_since_last_tick"] == 3.0


def test_a_claim_that_outlived_its_lease_is_not_run_by_its_old_holder(env: Env) -> None:
    slow, other = env.dispatcher(worker_id="slow"), env.dispatcher(worker_id="other")
    env.plan("x", T0)
    [claim] = slow.claim(1)  # then its thread stalls (a long queue, a pause) past the lease
    env.clock.advance(seconds=121)
    other.run_once()
    slow.execute(claim)
    assert env.posts("x") == 1 and env.toy.ran == ["x"]


def test_a_claim_with_too_little_lease_left_is_given_back_unposted(env: Env) -> None:
    d = env.dispatcher()
    env.plan("x", T0)
    [claim] = d.claim(1)
    env.clock.advance(seconds=61)  # past half the lease: a post might outlast it
    d.execute(claim)
    occ = env.occ("x")
    assert env.posts("x") == 0 and occ.state == OccurrenceState.PENDING and occ.run_at == env.clock.now()
    d.run_once()
    assert env.posts("x") == 1


# -- exactly once after a takeover --------------------------------------------------------------------------
def _post_and_die(env: Env, worker: Dispatcher) -> str:
    """`worker` claims the due occurrence, posts it, and dies before recording that it did."""
    [claim] = worker.claim(1)
    ctx = RunContext(occ=claim.occ, slack=worker.slack, now=env.clock.now(), reconcile=False)
    return ctx.post(env.channel, text=f"post for {claim.occ.key}")[1]


def test_a_takeover_given_back_by_a_rate_limit_on_its_lookup_still_looks_before_posting(env: Env) -> None:
    first, second = env.dispatcher(worker_id="first"), env.dispatcher(worker_id="second")
    env.plan("x", T0)
    posted_ts = _post_and_die(env, first)
    env.clock.advance(minutes=3)  # first's lease has expired
    env.fake.fail("conversations.history", "ratelimited", status=429, headers={"Retry-After": "30"})
    assert second.run_once() == 1  # takes over, is rate limited while looking, gives the row back
    occ = env.occ("x")
    assert occ.state == OccurrenceState.PENDING and occ.maybe_posted_at == T0  # the evidence is on the row
    env.clock.advance(seconds=30)
    second.run_once()
    occ = env.occ("x")
    assert env.posts("x") == 1 and occ.state == OccurrenceState.DONE and occ.result_ts == posted_ts


def test_a_takeover_released_from_the_queue_still_looks_before_posting(env: Env) -> None:
    first, second = env.dispatcher(worker_id="first"), env.dispatcher(worker_id="second")
    env.plan("x", T0)
    posted_ts = _post_and_die(env, first)
    env.clock.advance(minutes=3)
    [claim] = second.claim(1)
    assert claim.reconcile
    env.clock.advance(seconds=61)  # it waited in the thread pool's queue past half its lease
    second.execute(claim)
    assert env.occ("x").state == OccurrenceState.PENDING and env.posts("x") == 1
    second.run_once()  # a plain pending row now, but it remembers it may have been posted
    assert env.posts("x") == 1 and env.occ("x").result_ts == posted_ts


@pytest.mark.parametrize("hours_late", [0, 3])
def test_the_lookup_finds_a_lost_post_stamped_by_a_slower_slack_clock_in_a_busy_channel(
    engine: Engine, hours_late: int,
) -> None:
    clock = FrozenClock(T0)
    # Slack stamps messages with its own clock, here 100 s behind ours.
    fake = FakeSlack(clock=lambda: clock.epoch() - 100).start()
    try:
        channel = fake.add_channel("partner-toy", members=["UBOT"])
        env = Env(fake, clock, engine, ToyExecutor(), channel)
        first, second = env.dispatcher(worker_id="first"), env.dispatcher(worker_id="second")
        env.plan("x", T0)
        if hours_late:  # Slack refuses the first try for hours; the retry then posts
            wait = str(hours_late * 3600)
            env.fake.fail("chat.postMessage", "ratelimited", status=429, headers={"Retry-After": wait})
            first.run_once()
            env.clock.advance(hours=hours_late)
        posted_ts = _post_and_die(env, first)  # stamped before its due time by Slack's clock
        for i in range(450):  # then the channel gets busy: the lookup must page back past all of this
            fake.channels[channel].messages.append({"type": "message", "ts": f"{clock.epoch() + i:.6f}",
                                                    "user": "UALICE", "text": f"chatter {i}"})
        env.clock.advance(minutes=3)
        second.run_once()
        assert env.posts("x") == 1 and env.occ("x").result_ts == posted_ts
    finally:
        fake.stop()


# -- permanent errors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("code", ["user_disabled", "user_not_visible", "msg_blocks_too_long", "invalid_blocks_format",
                                  "restricted_action_read_only_channel", "is_archived", "channel_not_found"])
def test_an_error_retrying_cannot_fix_is_not_retried(env: Env, code: str) -> None:
    d = env.dispatcher()
    env.plan("x", T0)
    env.fake.fail("chat.postMessage", code)
    d.run_once()
    occ = env.occ("x")
    assert occ.state == OccurrenceState.FAILED and occ.attempts == 1 and env.toy.failures == [("x", code)]


# -- a run requested again while it runs -----------------------------------------------------------------------
def test_a_run_requested_while_running_runs_once_more_after_it_completes(env: Env) -> None:
    d = env.dispatcher()
    row = {"key": "r", "kind": KIND, "subject_id": 1, "due_at": T0, "payload": {"channel": env.channel}}
    with env.uow() as s:
        request_run(s, [row], T0)
    [claim] = d.claim(1)
    with env.uow() as s:
        request_run(s, [row], T0)  # e.g. the person edits their answer while it is being posted
    assert env.occ("r").state == OccurrenceState.CLAIMED  # its holder keeps it
    d.execute(claim)
    assert env.occ("r").state == OccurrenceState.PENDING  # and it runs again, with what changed
    d.run_once()
    assert env.toy.ran == ["r", "r"] and env.occ("r").state == OccurrenceState.DONE
    with env.uow() as s:
        request_run(s, [row], T0)  # a request after it completed
    d.run_once()
    assert env.toy.ran == ["r", "r", "r"]


# -- completions recorded in batches ---------------------------------------------------------------------------
def _with_apply(env: Env, apply: Any) -> Executor:
    """Posts like the toy executor; its completion runs `apply(key, session)` in the completion's transaction."""
    def run(occ: Occurrence, ctx: RunContext) -> Completion:
        done = env.toy.run(occ, ctx)

        def record(s: Session) -> None:
            apply(occ.key, s)

        return Completion.done(done.channel, done.ts, apply=record)

    return Executor(run, MisfirePolicy(grace=None))


def test_a_batch_whose_transaction_fails_still_records_its_other_completions(env: Env) -> None:
    broken = {"b": 2}  # fails in the batch and alone

    def apply(key: str, s: Session) -> None:
        if broken.get(key):
            broken[key] -= 1
            raise RuntimeError("a bug in what b records")

    d = env.dispatcher(write_linger=60)  # the writer waits for all three: one batch
    d.executors[KIND] = _with_apply(env, apply)
    for key in "abc":
        env.plan(key, T0)
    assert d.run_once() == 3
    assert [env.occ(k).state for k in "abc"] == [OccurrenceState.DONE, OccurrenceState.CLAIMED, OccurrenceState.DONE]
    env.clock.advance(seconds=121)  # b's lease expires: it is taken over, found posted, and recorded once
    d.run_once()
    assert env.occ("b").state == OccurrenceState.DONE and [env.posts(k) for k in "abc"] == [1, 1, 1]


def test_a_completion_whose_claim_was_lost_is_left_alone_by_its_batch(env: Env) -> None:
    a, b = env.dispatcher(worker_id="a"), env.dispatcher(worker_id="b")
    env.plan("x", T0)
    env.plan("y", T0)
    x, y = a.claim(10)
    env.clock.advance(seconds=121)
    assert [c.occ.key for c in b.claim(1)] == ["x"]  # b takes x over; y stays with a (expired, but untaken)
    applied: list[str] = []
    recorded = a.complete_many([(occ, Completion.done("C", "1.0", apply=lambda s, k=occ.key: applied.append(k)))
                                for occ in (x.occ, y.occ)])
    assert recorded == [False, True] and applied == ["y"]
    assert env.occ("x").state == OccurrenceState.CLAIMED and env.occ("x").claimed_by == "b"
    assert env.occ("x").result_ts is None and env.occ("y").result_ts == "1.0"


def test_wait_idle_and_shutdown_wait_for_completions_still_to_be_recorded(env: Env) -> None:
    release = threading.Event()
    d = env.dispatcher(write_batch=1)  # x is being written while y waits in the writer's queue
    d.executors[KIND] = _with_apply(env, lambda key, s: release.wait(30))
    env.plan("x", T0)
    env.plan("y", T0)
    assert d.tick() == 2
    with pytest.raises(TimeoutError):
        d.wait_idle(timeout=0.2)  # both posted, neither recorded yet
    assert env.posts("x") == env.posts("y") == 1
    threading.Timer(0.2, release.set).start()
    d.shutdown(wait=True)
    assert env.occ("x").state == env.occ("y").state == OccurrenceState.DONE


def test_shutdown_gives_back_the_claims_still_waiting_in_the_queue(env: Env) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(occ: Occurrence, ctx: RunContext) -> Completion:
        started.set()
        release.wait(30)
        return env.toy.run(occ, ctx)

    d = env.dispatcher(workers=1)  # one runs, the next waits in the queue
    d.executors[KIND] = Executor(slow, MisfirePolicy(grace=None))
    env.plan("x", T0)
    env.plan("y", T0 + timedelta(seconds=1))
    env.clock.advance(seconds=1)
    for claim in d.claim(2):  # what a tick does with a batch: x starts, y waits in the queue for the one worker
        d._start(claim)
    assert started.wait(10)
    d.shutdown(wait=False)  # x still runs
    assert env.occ("y").state == OccurrenceState.PENDING and env.occ("x").state == OccurrenceState.CLAIMED
    other = env.dispatcher(worker_id="other")
    assert other.run_once() == 1 and env.posts("y") == 1  # taken over at once, not after its lease
    release.set()
    d.wait_idle(timeout=10)
    assert env.occ("x").state == OccurrenceState.DONE and env.posts("x") == 1
    # A tick that was claiming while the process stopped gives back what it can no longer start.
    env.plan("z", T0)
    [late] = d.claim(1)
    d._start(late)
    assert env.occ("z").state == OccurrenceState.PENDING


def test_a_claim_taken_again_while_its_first_run_ends_is_still_given_back_at_shutdown(env: Env) -> None:
    d = env.dispatcher(workers=1)
    env.plan("x", T0)
    busy, free = threading.Event(), threading.Event()
    release = d._release
    again: list[Claim] = []

    def release_then_a_tick_takes_it_again(c: Claim, why: str) -> None:
        release(c, why)
        if not again:  # another thread's tick claims it at once, while this run is still ending
            again.extend(d.claim(1))
            d._pool.submit(lambda: (busy.set(), free.wait(30)))  # the one worker stays busy after this run
            d._start(again[0])

    d._release = release_then_a_tick_takes_it_again  # type: ignore[method-assign]
    [first] = d.claim(1)
    env.clock.advance(seconds=61)  # the first run starts after its post-by time: it gives the claim back
    d._start(first)
    assert busy.wait(10) and len(again) == 1  # the second claim of x waits in the queue
    d.shutdown(wait=False)
    free.set()
    assert env.occ("x").state == OccurrenceState.PENDING  # given back at once, not left to its lease
    d.wait_idle(timeout=5)  # and nothing is counted as still running


def test_what_prefetch_reads_for_a_batch_reaches_each_run_and_a_failing_one_reads_nothing(env: Env) -> None:
    seen: dict[str, Any] = {}

    def run(occ: Occurrence, ctx: RunContext) -> Completion:
        seen[occ.key] = ctx.context.get(occ.key)
        return env.toy.run(occ, ctx)

    d = env.dispatcher()
    d.executors[KIND] = Executor(run, MisfirePolicy(grace=None),
                                 prefetch=lambda occs: {o.key: f"read with {len(occs)}" for o in occs})
    env.plan("a", T0)
    env.plan("b", T0)
    d.run_once()
    assert seen == {"a": "read with 2", "b": "read with 2"}

    def broken(occs: Any) -> dict[Any, Any]:
        raise RuntimeError("a bug")

    d.executors[KIND] = Executor(run, MisfirePolicy(grace=None), prefetch=broken)
    env.plan("c", T0)
    d.run_once()
    assert seen["c"] is None and env.posts("c") == 1  # it ran without


def test_a_nudge_for_a_later_time_brings_the_next_tick_forward_and_never_puts_it_off(env: Env) -> None:
    ticker = Ticker(env.dispatcher(), {}, tick_seconds=3600).start()
    try:
        scheduler = ticker._scheduler
        assert scheduler is not None
        regular = datetime.now(UTC) + timedelta(hours=1)  # the next tick an hour away, whether or not the first one ran
        scheduler.modify_job("dispatch", next_run_time=regular)
        ticker.nudge(regular + timedelta(minutes=1))  # later than the next tick: nothing changes
        assert scheduler.get_job("dispatch").next_run_time == regular
        soon = datetime.now(UTC) + timedelta(minutes=10)
        ticker.nudge(soon)
        assert scheduler.get_job("dispatch").next_run_time == soon
    finally:
        ticker.stop()
