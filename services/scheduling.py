"""The scheduling engine: exactly once in effect, across restarts and replicas.

- Business rows hold the desired schedule; planners turn it into `occurrence` rows with a unique key
  (`upsert_planned` / `insert_new`: ON CONFLICT on the key). A plan carries the business row's version
  (`revision`), and an older plan never overwrites a newer one.
- `Dispatcher.claim` takes due rows under a lease in one short transaction (PostgreSQL: FOR UPDATE
  SKIP LOCKED; SQLite: the engine's BEGIN IMMEDIATE serialises claimers). "Now" for claims and lease
  expiry is the database's clock on PostgreSQL, so replicas whose clocks disagree cannot take over a live
  lease; the time left to post is measured on the claimer's own clock, from its claim. Taking over an
  expired lease records, in the claim's transaction, that the previous holder may have posted.
- The misfire policy of each kind (`KINDS`) is data: how late an occurrence may still run, whether
  only the newest of several due ones runs, how often a failure is retried.
- Executors run outside the transaction on a bounded thread pool. Each posts at most one Slack message,
  carrying the occurrence key in its message metadata; a worker that takes over an expired lease (or
  retries after an error that may have reached Slack) first looks for that key in the channel
  (`RunContext.post`) before posting again.
- Completion is fenced: it applies only while `claimed_by` and `attempts` still match the claim. A run
  requested again while it was running (`request_run`) runs once more after it completes. The worker
  threads hand their completions to one writer thread, which records up to a batch of them in one
  transaction, each row fenced on its own; if that transaction fails, each is recorded alone, and one that
  still cannot be is taken over after its lease like a crash (and looked for before posting again).
  `wait_idle` and `shutdown` wait for the completions still to be recorded.
- Failures back off and retry; past the policy's attempts (or at once for errors that retrying cannot
  fix, `PERMANENT_ERRORS`) the row is marked failed with its error and the executor's `on_failure` tells
  people. A 429 reschedules only that occurrence, after Retry-After.
- Each kind (`KINDS`) names its misfire policy and what its `subject_id` refers to.
"""

from __future__ import annotations

import functools
import gc
import json
import logging
import threading
import time
import uuid
from collections import deque, namedtuple
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, func, select

from adapters.clock import Clock
from adapters.slack import SlackError, SlackGateway, keyed_metadata, message_key
from models.db import UnitOfWork
from models.scheduling import Occurrence, OccurrenceState, SchedulerBeat

log = logging.getLogger(__name__)

# Kinds of scheduled work.
CHECKIN_PROMPT = "checkin_prompt"
CHECKIN_REMIND = "checkin_remind"
CHECKIN_CLOSE = "checkin_close"
CHECKIN_REPLY = "checkin_reply"  # a person's answers, shown (and kept up to date) in the prompt's thread
PULSE_OPEN = "pulse_open"  # a pulse survey round: posts the survey message
PULSE_REMIND = "pulse_remind"  # one private reminder to a person who has not answered
PULSE_CLOSE = "pulse_close"  # updates the survey message with the results
PULSE_ANSWERS = "pulse_answers"  # the open answers, without names, in the survey message's thread
NOTICE = "notice"  # a direct message telling people about a failure
MILESTONE_REMIND = "milestone_remind"  # a direct message to one owner, 7 or 1 day(s) before the due date
MILESTONE_OVERDUE = "milestone_overdue"  # the channel note the day after a due date passed with it still open
PARTNERSHIP_POST = "partnership_post"  # shared news for the channel, rendered when planned (milestones, kudos)
WINS_RECAP = "wins_recap"  # last month's wins, on the first working day of the month
POLL_POST = "poll_post"  # a new poll's message in the channel
POLL_REFRESH = "poll_refresh"  # the live tally, updated in place (requested after votes, ~1 s apart)
POLL_REMIND = "poll_remind"  # one person's private reminder before the poll closes
POLL_CLOSE = "poll_close"  # the final results, in place of the voting buttons
ISSUE_CARD = "issue_card"  # an issue's card: posted once, then updated in place (requested after each change)
ISSUE_NOTE = "issue_note"  # one line in the thread of an issue's card ("<@U1> acknowledged #7")
ISSUE_SLA = "issue_sla"  # one level of an issue's SLA ladder (warn, breach, escalate) for one run of one clock
ISSUE_DUE = "issue_due"  # an issue's due date: the reminder the day before, the overdue note the day after

# Slack errors that retrying will not fix: give up at once and tell people (from Slack's documented errors
# of chat.postMessage, chat.update, conversations.open and conversations.history).
PERMANENT_ERRORS = frozenset({
    # the workspace or the app
    "invalid_auth", "account_inactive", "token_revoked", "missing_scope", "not_authed", "team_not_found",
    "ekm_access_denied", "app_access_restricted", "team_access_not_granted",
    # the channel
    "channel_not_found", "is_archived", "not_in_channel", "restricted_action", "restricted_action_read_only_channel",
    "restricted_action_thread_only_channel", "restricted_action_non_threadable_channel",
    "restricted_action_thread_locked", "posting_to_channel_denied", "channel_is_limited_access",
    "messages_tab_disabled", "method_not_supported_for_channel_type", "thread_not_found", "cannot_reply_to_message",
    # the person (a direct message)
    "user_not_found", "user_disabled", "user_not_visible", "cannot_dm_bot",
    # the message itself
    "invalid_blocks", "invalid_blocks_format", "msg_too_long", "msg_blocks_too_long", "no_text", "too_many_attachments",
    "invalid_metadata_format", "invalid_metadata_schema", "metadata_too_large", "invalid_arguments",
    "message_limit_exceeded",
})


@dataclass(frozen=True)
class MisfirePolicy:
    """How a kind of occurrence behaves when it runs late or fails. Data, not code paths."""

    # How late it may still run (from due_at); None: never skipped for lateness. The planner may set an
    # earlier `not_after` (e.g. the end of the local day); the earlier of the two applies.
    grace: timedelta | None
    # Of several due occurrences of this kind for the same subject, only the newest runs.
    coalesce: bool = False
    max_failures: int = 5
    backoff_base: timedelta = timedelta(seconds=10)
    backoff_max: timedelta = timedelta(minutes=10)

    def not_after(self, due_at: datetime, cap: datetime | None = None) -> datetime | None:
        limit = due_at + self.grace if self.grace is not None else None
        if cap is not None:
            limit = cap if limit is None else min(limit, cap)
        return limit

    def backoff(self, failures: int) -> timedelta:
        return min(self.backoff_base * (2 ** max(failures - 1, 0)), self.backoff_max)


class Subject(StrEnum):
    """What an occurrence's `subject_id` refers to."""

    PARTNERSHIP = "partnership"
    CHECKIN_ROUND = "checkinround"
    CHECKIN_ANSWER = "checkinanswer"
    PULSE_ROUND = "pulseround"
    MILESTONE = "milestone"
    POLL = "poll"
    ISSUE = "issue"


@dataclass(frozen=True)
class Kind:
    """A kind of scheduled work: how it behaves when late or failing, and what its subject_id refers to."""

    name: str
    subject: Subject
    policy: MisfirePolicy


KINDS: dict[str, Kind] = {k.name: k for k in (
    # A prompt missed while the bot was down is posted late within 2 hours, never after its local day
    # (the planner caps not_after at midnight), and of several missed ones only the newest.
    Kind(CHECKIN_PROMPT, Subject.PARTNERSHIP, MisfirePolicy(grace=timedelta(hours=2), coalesce=True)),
    # A reminder is pointless once the window has closed (the planner sets not_after = closes_at).
    Kind(CHECKIN_REMIND, Subject.CHECKIN_ROUND, MisfirePolicy(grace=None)),
    # The summary is never skipped: it closes the round, however late.
    Kind(CHECKIN_CLOSE, Subject.CHECKIN_ROUND, MisfirePolicy(grace=None, max_failures=8)),
    # Answers are shown however late; an edit while it runs makes it run once more.
    Kind(CHECKIN_REPLY, Subject.CHECKIN_ANSWER, MisfirePolicy(grace=None, backoff_base=timedelta(seconds=5))),
    # Pulse rounds follow the check-in rules: late within 2 hours, never past the local day, only the newest.
    Kind(PULSE_OPEN, Subject.PARTNERSHIP, MisfirePolicy(grace=timedelta(hours=2), coalesce=True)),
    Kind(PULSE_REMIND, Subject.PULSE_ROUND, MisfirePolicy(grace=None)),  # not_after = the round's close
    Kind(PULSE_CLOSE, Subject.PULSE_ROUND, MisfirePolicy(grace=None, max_failures=8)),  # never skipped
    Kind(PULSE_ANSWERS, Subject.PULSE_ROUND, MisfirePolicy(grace=None)),
    Kind(NOTICE, Subject.PARTNERSHIP, MisfirePolicy(grace=timedelta(days=1), max_failures=3)),
    # A milestone reminder missed while the bot was down is sent late on its local day, never after it
    # (the planner caps not_after at the end of that day): a stale reminder is noise.
    Kind(MILESTONE_REMIND, Subject.MILESTONE, MisfirePolicy(grace=None)),
    # The overdue note is never skipped (it re-checks that the milestone is still open).
    Kind(MILESTONE_OVERDUE, Subject.MILESTONE, MisfirePolicy(grace=None, max_failures=8)),
    # Announcements, celebrations and kudos: never skipped, retried until posted once.
    Kind(PARTNERSHIP_POST, Subject.PARTNERSHIP, MisfirePolicy(grace=None, max_failures=8)),
    # A month's recap is still worth posting within a few days of its first working day.
    Kind(WINS_RECAP, Subject.PARTNERSHIP, MisfirePolicy(grace=timedelta(days=3))),
    # A poll is posted however late (while it is open); its close is never skipped, however late.
    Kind(POLL_POST, Subject.POLL, MisfirePolicy(grace=None, max_failures=8)),
    Kind(POLL_CLOSE, Subject.POLL, MisfirePolicy(grace=None, max_failures=8)),
    # The live tally: one key per poll, re-armed by each vote; a failed update is retried soon.
    Kind(POLL_REFRESH, Subject.POLL, MisfirePolicy(grace=None, backoff_base=timedelta(seconds=2),
                                                   backoff_max=timedelta(minutes=1), max_failures=10)),
    # A reminder is pointless once the poll has closed (the planner sets not_after = closes_at).
    Kind(POLL_REMIND, Subject.POLL, MisfirePolicy(grace=None)),
    # An issue's card is kept up to date like a poll's tally: one key per issue, re-armed by each change.
    Kind(ISSUE_CARD, Subject.ISSUE, MisfirePolicy(grace=None, backoff_base=timedelta(seconds=2),
                                                  backoff_max=timedelta(minutes=1), max_failures=10)),
    # Thread notes wait (retrying) for the card to be posted; never skipped.
    Kind(ISSUE_NOTE, Subject.ISSUE, MisfirePolicy(grace=None, max_failures=8)),
    # SLA levels are never skipped for lateness: after a restart they fire late, once, after re-checking that
    # their clock still runs. The due-date reminder's planner caps it at the end of its day; the overdue note is
    # never skipped.
    Kind(ISSUE_SLA, Subject.ISSUE, MisfirePolicy(grace=None, max_failures=8)),
    Kind(ISSUE_DUE, Subject.ISSUE, MisfirePolicy(grace=None, max_failures=8)),
)}


# Runs inside the fenced completion transaction, only when the claim still holds; returns the occurrences it
# plans (rows for `insert_new`, inserted with those of the other completions of its batch), or None.
Apply = Callable[[Session], Sequence[dict[str, Any]] | None]


@dataclass
class Completion:
    """What an executor decided. `apply` runs inside the fenced completion transaction."""

    state: OccurrenceState
    note: str | None = None
    channel: str | None = None
    ts: str | None = None
    apply: Apply | None = None

    @classmethod
    def done(cls, channel: str | None = None, ts: str | None = None, apply: Apply | None = None) -> Completion:
        return cls(OccurrenceState.DONE, channel=channel, ts=ts, apply=apply)

    @classmethod
    def skipped(cls, note: str, apply: Apply | None = None) -> Completion:
        return cls(OccurrenceState.SKIPPED, note=note, apply=apply)

    @classmethod
    def obsolete(cls, note: str, apply: Apply | None = None) -> Completion:
        return cls(OccurrenceState.OBSOLETE, note=note, apply=apply)


# The occurrence key a message's metadata carries (posts carry it as their message key).
occurrence_key_of = message_key


class NotPosted(Exception):
    """This occurrence may no longer post (`state`, `note`), and no earlier attempt had posted it."""

    def __init__(self, note: str, state: OccurrenceState = OccurrenceState.SKIPPED) -> None:
        super().__init__(note)
        self.note, self.state = note, state


# How far the look-up before a re-post pages back at most (200 messages a page).
HISTORY_PAGES_MAX = 100


def _error_code(last_error: str | None) -> str:
    """The Slack error code of a failed attempt's `last_error` (`str(SlackError)`: "<method>: <code>")."""
    return (last_error or "").rpartition(": ")[2].strip() or "unknown_error"


class ClaimExpiring(Exception):
    """Too little of the lease is left to post safely: another process may take over meanwhile."""


@dataclass
class RunContext:
    """What an executor may do with Slack for one claimed occurrence."""

    occ: Occurrence
    slack: SlackGateway
    now: datetime
    reconcile: bool  # a previous attempt may have posted already: look before posting
    clock: Clock | None = None  # for the lease check right before posting
    # Post only until then (on `clock`): past it, too little of the lease is left and another process may
    # take the occurrence over while the post is on its way. None: no limit (tests and tools).
    post_by: datetime | None = None
    lease: timedelta = timedelta(seconds=120)
    # Why this occurrence may no longer post (too late, superseded, no longer wanted): then post() only
    # adopts what an earlier attempt posted, and raises NotPosted when there is nothing to adopt.
    adopt_only: NotPosted | None = None
    adopted: dict[str, Any] | None = None  # the earlier attempt's message, once adopted
    # What the executor's `prefetch` loaded for the whole claimed batch (empty without one).
    context: dict[Any, Any] = field(default_factory=dict)

    def metadata(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return keyed_metadata(self.occ.key, extra)

    def unless_posted(self, note: str, state: OccurrenceState = OccurrenceState.OBSOLETE) -> Completion | None:
        """For an executor that finds its occurrence no longer wanted: the completion to return, or None
        when an earlier attempt may have posted it (then carry on: post() adopts that message or raises)."""
        if not self.reconcile:
            return Completion(state, note=note)
        self.adopt_only = NotPosted(note, state)
        return None

    def post(
        self, channel: str, *, text: str, blocks: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None, thread_ts: str | None = None,
    ) -> tuple[str, str]:
        """Post this occurrence's one message, unless a previous attempt already did. -> (channel, ts).
        A user id as `channel` means the app's direct message with that person; `thread_ts` posts a reply
        in that thread. `extra` goes into the message metadata (and comes back in `adopted` when a later
        attempt adopts the message)."""
        if channel[:1] in ("U", "W"):
            channel = self.slack.open_dm(channel)
        if self.reconcile:
            found = self.find_posted(channel, thread_ts)
            if found is not None:
                log.info("occurrence %s was already posted (ts %s): adopting it", self.occ.key, found["ts"])
                self.adopted = found
                return channel, str(found["ts"])
        if self.adopt_only is not None:
            raise self.adopt_only
        if self.post_by is not None and self.clock is not None and self.clock.now() > self.post_by:
            raise ClaimExpiring(self.occ.key)
        ts = self.slack.post(channel, text=text, blocks=blocks, thread_ts=thread_ts, metadata=self.metadata(extra))
        return channel, ts

    def find_posted(self, channel: str, thread_ts: str | None = None) -> dict[str, Any] | None:
        """The message in `channel` (or in the thread `thread_ts`) that carries this occurrence's key, if any.

        An earlier attempt posted after the earliest of: due_at, the attempt that may have posted (a retry
        hours later, or a holder whose lease expired), and one lease before this claim. Slack stamps messages
        with its own clock, so the search reaches one more lease further back, and pages until past that."""
        earliest = min(self.occ.due_at, self.occ.maybe_posted_at or self.occ.due_at, self.now - self.lease)
        oldest = f"{(earliest - self.lease).timestamp():.6f}"
        return self.slack.find_keyed(channel, self.occ.key, thread_ts=thread_ts, oldest=oldest,
                                     max_pages=HISTORY_PAGES_MAX)


@dataclass(frozen=True)
class Executor:
    """Runs one kind of occurrence. `on_failure` runs inside the transaction that marks it failed, so
    it can only write to the database (e.g. plan notices), never call Slack. `prefetch`, given the
    occurrences of this kind claimed together, reads what their runs need in one go (after the claim,
    before they run); each run finds the result in `RunContext.context`, and must still work without it."""

    run: Callable[[Occurrence, RunContext], Completion]
    policy: MisfirePolicy
    on_failure: Callable[[Session, Occurrence, str], None] | None = None
    prefetch: Callable[[Sequence[Occurrence]], dict[Any, Any]] | None = None


# -- planning helpers ---------------------------------------------------------------------------------
_OCC: sa.Table = Occurrence.__table__  # type: ignore[attr-defined]


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


@functools.cache
def _insert_new_statement(dialect: str) -> Any:
    """Built once per dialect (a statement built per call costs more CPU than running it)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(_OCC).on_conflict_do_nothing(index_elements=["key"])


def _rows(rows: Sequence[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        values = {"payload": {}, "not_after": None, "revision": 0, "state": OccurrenceState.PENDING.value, **row}
        values.setdefault("run_at", values["due_at"])
        values["created_at"] = values["updated_at"] = now
        out.append(values)
    return out


# The columns a planned row is written with (see `_driver_rows` for the defaults of those a row leaves out).
_PLANNED_COLUMNS = ("key", "kind", "subject_id", "due_at", "run_at", "not_after", "state", "attempts", "failures",
                    "revision", "payload", "created_at", "updated_at")


@dataclass(frozen=True)
class _DriverStatement:
    """A planning statement compiled once for SQLite, with each parameter's type processing, so that a pass's rows
    go to the driver as tuples (SQLAlchemy's per-row parameter processing cost several times the write itself)."""

    sql: str
    names: tuple[str, ...]  # its parameters in order: `_PLANNED_COLUMNS`, then the statement's own
    processors: tuple[Callable[[Any], Any] | None, ...]
    constants: dict[str, Any]  # the statement's own parameters ("pending" in its WHERE), processed


@functools.lru_cache(maxsize=32)
def _driver_statement(stmt: Any, dialect: sa.Dialect) -> _DriverStatement:
    compiled = stmt.compile(dialect=dialect, column_keys=list(_PLANNED_COLUMNS))
    names = tuple(compiled.positiontup)
    processors = tuple(compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names)
    constants = {}
    for name, process in zip(names, processors, strict=True):
        if name not in _PLANNED_COLUMNS:
            value = compiled.params[name]
            constants[name] = process(value) if process is not None else value
    if names[:len(_PLANNED_COLUMNS)] != _PLANNED_COLUMNS:
        raise RuntimeError(f"unexpected parameter order of a planning statement: {names}")
    return _DriverStatement(compiled.string, names, processors, constants)


class _Processed(dict[Any, Any]):
    """A column's processed values by value, each processed once (on its first miss)."""

    def __init__(self, convert: Callable[[Any], Any] | None) -> None:
        super().__init__()
        self.convert = convert

    def __missing__(self, value: Any) -> Any:
        out = self[value] = value if self.convert is None else self.convert(value)
        return out


def _driver_rows(st: _DriverStatement, rows: Sequence[dict[str, Any]], now: datetime) -> list[Any]:
    """The rows as the driver's parameters (the defaults of `_rows`). Each distinct value of a column is processed
    once per call: in a pass most rows share their times, kinds and payloads. Times are written in UTC (equal
    instants alike: SQLite stores the wall time given), payloads remembered by their repr (1 and True differ)."""
    process = dict(zip(st.names, st.processors, strict=True))

    def in_utc(convert: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
        if convert is None:
            return None
        return lambda moment: convert(moment.astimezone(UTC) if moment.tzinfo is not None else moment)

    kind, subject, state, attempts, failures, revision = (
        _Processed(process.get(name)) for name in ("kind", "subject_id", "state", "attempts", "failures", "revision"))
    due_at, run_at, not_after = (_Processed(in_utc(process.get(name))) for name in ("due_at", "run_at", "not_after"))
    payloads: dict[str, Any] = {}
    convert_payload, convert_key = process.get("payload"), process.get("key")
    stamp = _Processed(in_utc(process.get("created_at")))[now]
    pending = OccurrenceState.PENDING.value
    constants = tuple(st.constants[name] for name in st.names if name in st.constants)
    out: list[Any] = []
    for row in rows:
        due, get = row["due_at"], row.get
        payload, late = get("payload", {}), get("not_after")
        text = repr(payload)
        processed = payloads.get(text)
        if processed is None:
            processed = payloads[text] = payload if convert_payload is None else convert_payload(payload)
        values = (row["key"] if convert_key is None else convert_key(row["key"]), kind[row["kind"]],
                  subject[row["subject_id"]], due_at[due], run_at[get("run_at", due)],
                  None if late is None else not_after[late], state[get("state", pending)], attempts[get("attempts", 0)],
                  failures[get("failures", 0)], revision[get("revision", 0)], processed, stamp, stamp)
        out.append(values + constants)
    return out


def _write_planned(session: Session, stmt: Any, rows: Sequence[dict[str, Any]], now: datetime) -> None:
    """One executemany of a planning statement (`stmt`: an insert of `_PLANNED_COLUMNS`) for these rows. On SQLite
    the rows go to the driver as they are; on PostgreSQL through SQLAlchemy, whose insertmanyvalues sends them as
    multi-row VALUES statements (its fast path there)."""
    dialect = session.get_bind().dialect
    if dialect.name != "sqlite":
        session.connection().execute(stmt, _rows(rows, now))
        return
    st = _driver_statement(stmt, dialect)
    session.connection().exec_driver_sql(st.sql, _driver_rows(st, rows, now))


@functools.cache
def _changing_statement(dialect: str, upsert: bool) -> Any:
    """Which of the given rows (by their position) would change something: their key is not planned yet, or (with
    `upsert`, as `upsert_planned` decides) it is pending or obsolete under an older revision. The rows' keys and
    revisions are one or two parameters (a JSON array on SQLite, arrays on PostgreSQL), so any number of rows is
    one statement, and the answer holds only what changes (nothing, in a pass where nothing changed)."""
    older = (f" OR (o.state IN ('{OccurrenceState.PENDING.value}', '{OccurrenceState.OBSOLETE.value}')"
             " AND o.revision < {revision})") if upsert else ""
    if dialect == "postgresql":
        sql = (f"SELECT u.i - 1 FROM unnest(CAST(:keys AS text[]), CAST(:revisions AS integer[])) "
               f"WITH ORDINALITY AS u(key, revision, i) LEFT JOIN {_OCC.name} AS o ON o.key = u.key "
               f"WHERE o.id IS NULL" + older.format(revision="u.revision"))
    else:  # json_each: `key` is the position in the array, `value` a [key, revision] pair
        sql = (f"SELECT CAST(j.key AS INTEGER) FROM json_each(:rows) AS j LEFT JOIN {_OCC.name} AS o "
               f"ON o.key = json_extract(j.value, '$[0]') "
               f"WHERE o.id IS NULL" + older.format(revision="json_extract(j.value, '$[1]')"))
    return sa.text(sql)


def _unplanned(session: Session, rows: Sequence[dict[str, Any]], *, upsert: bool) -> list[dict[str, Any]]:
    """The rows whose insert (or, with `upsert`, upsert_planned) would change something. One read for all."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        params: dict[str, Any] = {"keys": [r["key"] for r in rows], "revisions": [r.get("revision", 0) for r in rows]}
    else:
        params = {"rows": json.dumps([[r["key"], r.get("revision", 0)] for r in rows])}
    changing = session.connection().execute(_changing_statement(dialect, upsert), params).scalars().all()
    return [rows[i] for i in sorted(changing)]


def insert_new(session: Session, rows: Sequence[dict[str, Any]], now: datetime, *, skip_planned: bool = False) -> None:
    """Insert occurrences whose key does not exist yet (others are left as they are). `skip_planned`: first read
    which keys exist, in one statement, and send only the others (for a planner's full pass, where nearly every
    row is planned already: reading a key costs far less than writing its row)."""
    if rows and skip_planned:
        rows = _unplanned(session, rows, upsert=False)
    if rows:  # executemany, on the Core table: one compiled statement for any number of rows
        _write_planned(session, _insert_new_statement(session.get_bind().dialect.name), rows, now)


@functools.cache
def _upsert_planned_statement(dialect: str) -> Any:
    """On the Core table, not the ORM entity: the ORM's bulk insert leaves None values out, so it splits rows that
    differ only in which values are None (a reminder with `not_after`, an overdue note without) into a statement
    each. Built once per dialect; `updated_at` is the planning time every row carries (`_rows`)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_OCC)
    return stmt.on_conflict_do_update(
        index_elements=["key"],
        set_={
            "due_at": stmt.excluded.due_at, "run_at": stmt.excluded.run_at, "not_after": stmt.excluded.not_after,
            "payload": stmt.excluded.payload, "revision": stmt.excluded.revision,
            "state": OccurrenceState.PENDING.value, "last_error": None, "updated_at": stmt.excluded.updated_at,
        },
        where=sa.and_(
            sa.or_(_OCC.c.state == OccurrenceState.PENDING.value,  # not IN: no expanding with executemany
                   _OCC.c.state == OccurrenceState.OBSOLETE.value),
            _OCC.c.revision < stmt.excluded.revision,
        ),
    )


def upsert_planned(
    session: Session, rows: Sequence[dict[str, Any]], now: datetime, *, skip_planned: bool = False,
) -> None:
    """Insert planned occurrences, or move not-yet-run ones (pending or obsolete) to their new time when
    the plan is newer than theirs (a higher revision). Re-planning the same revision changes nothing, so
    a retry's backoff survives the planner; rows that ran, were skipped, or are claimed are never touched.
    Any number of rows is one statement (an executemany). `skip_planned`: first read the rows' keys, in one
    statement, and send only the rows that change something (for a planner's full pass)."""
    if rows and skip_planned:
        rows = _unplanned(session, rows, upsert=True)
    if rows:
        _write_planned(session, _upsert_planned_statement(session.get_bind().dialect.name), rows, now)


@functools.cache
def _request_run_statement(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_OCC)
    running = _OCC.c.state == OccurrenceState.CLAIMED.value
    return stmt.on_conflict_do_update(
        index_elements=["key"],
        set_={
            "revision": _OCC.c.revision + 1,
            "state": sa.case((running, OccurrenceState.CLAIMED.value), else_=OccurrenceState.PENDING.value),
            "run_at": sa.case((running, _OCC.c.run_at), else_=stmt.excluded.run_at),
            "failures": sa.case((running, _OCC.c.failures), else_=0),
            "payload": stmt.excluded.payload, "updated_at": stmt.excluded.updated_at,
        },
    )


def request_run(session: Session, rows: Sequence[dict[str, Any]], now: datetime) -> None:
    """Have these occurrences run (again) soon: insert them, or put one that already ran back to pending
    (its failure count starts again; its "may have been posted" mark stays). One that is running now is
    left to its holder, with its revision moved on, so that it runs once more as soon as it completes."""
    if rows:
        session.connection().execute(_request_run_statement(session.get_bind().dialect.name), _rows(rows, now))


# A message kept up to date in place (a poll's live tally, an issue's card) is updated at most about this often.
REFRESH_EVERY = timedelta(seconds=1)


_PENDING_RUN_AT = sa.select(_OCC.c.run_at).where(  # built once: every vote runs it
    _OCC.c.key == sa.bindparam("key"), _OCC.c.state == OccurrenceState.PENDING.value)


def request_refresh(
    session: Session, *, kind: str, subject_id: int, refreshed_at: datetime | None, now: datetime,
    every: timedelta = REFRESH_EVERY, unless_pending: bool = False,
) -> datetime | None:
    """Have the message of `kind` about `subject_id`, kept up to date in place, show it as it is now: one
    occurrence per subject (key `<kind>:<subject_id>`), re-armed by every change (`request_run`), due no sooner
    than `every` after its last update (`refreshed_at`), so a burst of changes becomes about one update per
    `every` and the last state always shows. `unless_pending`: leave an update that is already pending alone
    (only when its executor waits for the subject's row, which the caller holds, so it reads this change).
    Returns when a dispatch tick finds the update due, for the caller to nudge the dispatcher then (after its
    commit): the time this call armed it for, now when it was pending and already due, None when it was
    pending and due later (the call that armed it asked for that time; in a storm, most changes)."""
    key = f"{kind}:{subject_id}"
    if unless_pending and (pending := session.connection().execute(_PENDING_RUN_AT, {"key": key}).first()):
        return now if pending.run_at <= now else None
    row = _refresh_row(kind, subject_id, refreshed_at, now, every)
    request_run(session, [row], now)
    return row["due_at"]


def request_refreshes(
    session: Session, *, kind: str, subjects: Sequence[tuple[int, datetime | None]], now: datetime,
    every: timedelta = REFRESH_EVERY,
) -> None:
    """`request_refresh` for several subjects in one statement: each (subject id, its last update)."""
    request_run(session, [_refresh_row(kind, subject_id, at, now, every) for subject_id, at in subjects], now)


def _refresh_row(kind: str, subject_id: int, refreshed_at: datetime | None, now: datetime,
                 every: timedelta) -> dict[str, Any]:
    due = max(now, refreshed_at + every) if refreshed_at else now
    return {"key": f"{kind}:{subject_id}", "kind": kind, "subject_id": subject_id, "due_at": due}


def refresh_too_soon(
    occ: Occurrence, refreshed_at: datetime | None, now: datetime, every: timedelta = REFRESH_EVERY,
) -> Completion | None:
    """For the executor of such a refresh: when the last update was less than `every` ago, the completion that
    skips this run and has it run again once `every` has passed (None: update now)."""
    if refreshed_at is None or now >= refreshed_at + every:
        return None
    return run_again(occ, refreshed_at + every, now, "too soon after the last update")


def run_again(occ: Occurrence, due: datetime, now: datetime, note: str) -> Completion:
    """For an executor whose occurrence must wait its turn (nothing posted, no failure counted): the completion
    that skips this run and has it run again from `due` on."""

    def later(s: Session) -> None:
        request_run(s, [{"key": occ.key, "kind": occ.kind, "subject_id": occ.subject_id, "due_at": due,
                         "payload": occ.payload}], now)

    return Completion.skipped(note, apply=later)


def plan_notices(
    session: Session, *, subject_id: int, people: Sequence[str], key: str, text: str, now: datetime,
) -> None:
    """Tell these people `text` by direct message (a NOTICE each, for the partnership `subject_id`). A key
    planned before plans nothing again, so the same news reaches each person once."""
    insert_new(session, [{"key": f"{key}:{user}", "kind": NOTICE, "subject_id": subject_id, "due_at": now,
                          "payload": {"user": user, "text": text}} for user in people], now)


def mark_obsolete(
    session: Session, *, kinds: Sequence[str], subject_id: int, now: datetime, note: str,
    due_after: datetime | None = None,
) -> int:
    """Obsolete the pending occurrences of one subject (before re-planning it)."""
    stmt = (
        sa.update(Occurrence)
        .where(col(Occurrence.kind).in_(list(kinds)), col(Occurrence.subject_id) == subject_id,
               col(Occurrence.state) == OccurrenceState.PENDING.value)
        .values(state=OccurrenceState.OBSOLETE.value, last_error=note, updated_at=now)
    )
    if due_after is not None:
        stmt = stmt.where(col(Occurrence.due_at) > due_after)
    return int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]


def skip_by_key(session: Session, rows: Sequence[dict[str, Any]], now: datetime, note: str) -> None:
    """Mark these occurrences skipped (planning them first if they are not planned yet)."""
    insert_new(session, rows, now)
    session.execute(
        sa.update(Occurrence)
        .where(col(Occurrence.key).in_([r["key"] for r in rows]),
               col(Occurrence.state).in_([OccurrenceState.PENDING.value, OccurrenceState.OBSOLETE.value]))
        .values(state=OccurrenceState.SKIPPED.value, last_error=note, updated_at=now)
    )


@functools.lru_cache(maxsize=64)
def _planning_row_type(columns: tuple[str, ...]) -> Callable[[Any], Any]:
    return namedtuple("PlanningRow", columns)._make  # type: ignore[misc]


def planning_rows(conn: sa.Connection, query: Any) -> Iterator[Any]:
    """The rows of a planner's query (Core: the columns it plans from) as named tuples: SQLAlchemy's rows read a
    column by name about ten times slower, and a planner reads a dozen of each row's."""
    result = conn.execute(query)
    make = _planning_row_type(tuple(result.keys()))
    for row in result:
        yield make(row)


_gc_pauses = 0
_gc_lock = threading.Lock()
_gc_was_enabled = False


@contextmanager
def collection_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off meanwhile (for a planning pass): a pass makes a few hundred thousand
    short-lived rows, which free themselves, and each full collection they set off walks every object the process
    holds (about a fifth of a pass's CPU at 10,000 partnerships). Nested and concurrent passes share one pause; the
    collector is back on after the last one, as it was before the first."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


# -- dispatching --------------------------------------------------------------------------------------
@dataclass
class Claim:
    occ: Occurrence
    reconcile: bool  # a previous attempt may have posted: look before posting
    superseded: str | None = None  # why it must not run: a newer one of its kind is due (coalescing kinds)
    # The database's clock minus ours at the claim: times written for the database (run_at) are shifted by it.
    skew: timedelta = timedelta(0)
    # On our clock: the claim may post until then (half its lease), then it is given back unposted.
    post_by: datetime | None = None
    # What its executor's `prefetch` read for the batch it was claimed with (RunContext.context).
    context: dict[Any, Any] = field(default_factory=dict)


# A completion waiting for the writer: the occurrence as claimed, and what its run decided.
Done = tuple[Occurrence, Completion]

# The hot path's statements, built once (building a statement costs more CPU than running it); values are
# bound per call. `now` is the lease clock's "now", passed in.
_STATE, _RUN_AT, _REVISION = _OCC.c.state, _OCC.c.run_at, _OCC.c.revision
_CLAIMABLE = (
    sa.select(Occurrence)
    .where(col(Occurrence.run_at) <= sa.bindparam("now", type_=_RUN_AT.type))
    .where(col(Occurrence.kind).in_(sa.bindparam("kinds", expanding=True)))
    .where(
        sa.or_(
            col(Occurrence.state) == OccurrenceState.PENDING.value,
            sa.and_(col(Occurrence.state) == OccurrenceState.CLAIMED.value,
                    col(Occurrence.lease_until) < sa.bindparam("now", type_=_RUN_AT.type)),
        )
    )
    .order_by(col(Occurrence.run_at), col(Occurrence.id))
    .limit(sa.bindparam("limit", type_=sa.Integer))
    .with_for_update(skip_locked=True)
)
_TAKE = (
    sa.update(_OCC)
    .where(_OCC.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(state=OccurrenceState.CLAIMED.value, claimed_by=sa.bindparam("p_worker"),
            lease_until=sa.bindparam("p_lease_until", type_=_RUN_AT.type), attempts=_OCC.c.attempts + 1,
            updated_at=sa.bindparam("p_local", type_=_RUN_AT.type),
            # Its holder died or stalled, maybe after posting: whatever happens to this claim, every later
            # attempt looks before posting (the previous claim is when it started).
            maybe_posted_at=sa.case(
                (_STATE == OccurrenceState.CLAIMED.value,
                 sa.func.coalesce(_OCC.c.maybe_posted_at, _OCC.c.updated_at)),
                else_=_OCC.c.maybe_posted_at))
)
_NEWEST_DUE = (
    sa.select(_OCC.c.kind, _OCC.c.subject_id, sa.func.max(_OCC.c.due_at))
    .where(_OCC.c.kind.in_(sa.bindparam("kinds", expanding=True)),
           _OCC.c.subject_id.in_(sa.bindparam("subjects", expanding=True)),
           _OCC.c.due_at <= sa.bindparam("now", type_=_RUN_AT.type),
           _STATE.in_([OccurrenceState.PENDING.value, OccurrenceState.CLAIMED.value, OccurrenceState.DONE.value]))
    .group_by(_OCC.c.kind, _OCC.c.subject_id)
)
_DATABASE_NOW = sa.select(sa.func.now())


@functools.cache
def _complete_statement(database_clock: bool) -> Any:
    """The fenced completion: applies only while `claimed_by` and `attempts` still match the claim. When the
    run was requested again meanwhile (the revision moved on), the row goes back to pending, due now."""
    again = _REVISION != sa.bindparam("o_revision")
    now = sa.func.now() if database_clock else sa.bindparam("o_db_now", type_=_RUN_AT.type)
    return (
        sa.update(_OCC)
        .where(_OCC.c.id == sa.bindparam("o_id"), _OCC.c.claimed_by == sa.bindparam("o_worker"),
               _OCC.c.attempts == sa.bindparam("o_attempts"), _STATE == OccurrenceState.CLAIMED.value)
        .values(state=sa.case((again, OccurrenceState.PENDING.value), else_=sa.bindparam("o_state")),
                run_at=sa.case((again, now), else_=_RUN_AT), lease_until=None,
                last_error=sa.bindparam("o_note"), result_channel=sa.bindparam("o_channel"),
                result_ts=sa.bindparam("o_ts"), updated_at=sa.bindparam("o_now", type_=_RUN_AT.type))
    )


@dataclass
class Dispatcher:
    uow: UnitOfWork
    slack: SlackGateway  # its client retries nothing itself (see adapters.slack.make_client)
    clock: Clock
    executors: dict[str, Executor]
    lease: timedelta = timedelta(seconds=120)
    workers: int = 8
    worker_id: str = field(default_factory=lambda: f"w-{uuid.uuid4().hex[:10]}")
    # Take "now" for claims and lease expiry from the database (PostgreSQL's now()), so that replicas
    # whose clocks disagree never take over a live lease. None: on PostgreSQL (SQLite has one process).
    database_clock: bool | None = None
    # Completions of the worker threads are recorded by one writer thread, up to `write_batch` of them in one
    # transaction (default: `workers`); it waits up to `write_linger` seconds for a batch to fill while
    # workers are still running, and writes at once when none is.
    write_batch: int | None = None
    write_linger: float = 0.02

    def __post_init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="dispatch")
        # Up to a second batch waits in the pool's queue, so a worker that finishes starts the next
        # occurrence at once, and claims come in batches of `workers` rows (one transaction each). The
        # lease is far longer than the wait in the queue.
        self._capacity = 2 * self.workers
        # A claim is run, and posts, only while at least this much of its lease is left; the scheduled
        # Slack client's timeout is shorter (bot.py), so a post ends before another process may take over.
        self.margin = self.lease / 2
        self._inflight = 0
        self._queued: dict[int, tuple[Future[None], Claim]] = {}  # started claims by occurrence id, until they end
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # any change of _inflight, _writes or _closed
        self._tick_lock = threading.Lock()
        self._closed = False
        self._kinds = list(self.executors)
        # Completions waiting for the writer thread (started when the first one comes, gone when idle), and
        # how many are queued or being written: wait_idle waits for them too.
        self._writes: deque[Done] = deque()
        self._pending_writes = 0
        self._writer: threading.Thread | None = None
        self._writer_closed = False
        self._batch = max(1, self.write_batch or self.workers)

    def _on_database_clock(self, s: Session) -> bool:
        if self.database_clock is None:
            return s.get_bind().dialect.name == "postgresql"
        return self.database_clock

    def _now(self, s: Session) -> datetime:
        """Now, by the clock leases are kept on."""
        if self._on_database_clock(s):
            return s.connection().execute(_DATABASE_NOW).scalar_one()  # type: ignore[no-any-return]
        return self.clock.now()

    # One short transaction: pick due rows and take them under a lease.
    def claim(self, limit: int) -> list[Claim]:
        if limit <= 0:
            return []
        local = self.clock.now()
        with self.uow() as s:
            now = self._now(s)
            rows = list(s.execute(_CLAIMABLE, {"now": now, "kinds": self._kinds, "limit": limit}).scalars())
            if not rows:
                return []
            lease_until = now + self.lease
            # Core, not the ORM: the loaded rows keep their old state, read below.
            s.connection().execute(_TAKE, {"ids": [occ.id for occ in rows], "p_worker": self.worker_id,
                                           "p_lease_until": lease_until, "p_local": local})
            superseded = self._superseded(s, rows, now)
            s.expunge_all()
            claims = []
            for occ in rows:
                if occ.state == OccurrenceState.CLAIMED and occ.maybe_posted_at is None:
                    occ.maybe_posted_at = occ.updated_at
                occ.state, occ.claimed_by, occ.lease_until = OccurrenceState.CLAIMED, self.worker_id, lease_until
                occ.attempts, occ.updated_at = occ.attempts + 1, local
                claims.append(Claim(occ, occ.maybe_posted_at is not None, superseded.get(occ.id or 0),
                                    skew=now - local, post_by=local + self.lease - self.margin))
        return claims

    def _superseded(self, s: Session, rows: Sequence[Occurrence], now: datetime) -> dict[int, str]:
        """For kinds that coalesce: the claimed rows of which a newer one (same kind and subject) is due."""
        coalescing = [o for o in rows if self.executors[o.kind].policy.coalesce]
        if not coalescing:
            return {}
        newest = {
            (kind, subject): due for kind, subject, due in s.connection().execute(_NEWEST_DUE, {
                "kinds": list({o.kind for o in coalescing}), "subjects": list({o.subject_id for o in coalescing}),
                "now": now})
        }
        out = {}
        for o in coalescing:
            due = newest.get((o.kind, o.subject_id))
            if due is not None and due > o.due_at:
                out[o.id or 0] = f"superseded by a newer one due {due:%Y-%m-%d %H:%M} UTC"
        return out

    def _prefetch(self, claims: Sequence[Claim]) -> None:
        """Let each executor with a `prefetch` read, in one go, what the runs of its claimed rows need."""
        by_kind: dict[str, list[Claim]] = {}
        for c in claims:
            if self.executors[c.occ.kind].prefetch is not None:
                by_kind.setdefault(c.occ.kind, []).append(c)
        for kind, group in by_kind.items():
            prefetch = self.executors[kind].prefetch
            assert prefetch is not None
            try:
                context = prefetch([c.occ for c in group])
            except Exception:  # each run reads for itself instead
                log.exception("prefetching for %s occurrence(s) of %s failed", len(group), kind)
                continue
            for c in group:
                c.context = context

    def tick(self) -> int:
        """Claim and start due occurrences in batches while there are any, keeping the workers busy.
        Returns how many were started. Overlapping calls return 0 at once."""
        if self._closed or not self._tick_lock.acquire(blocking=False):
            return 0
        started = 0
        try:
            self.beat()
            while not self._closed:
                # The first claim takes what fits; later ones wait for a whole batch of free places.
                free = self._wait_for_room(1 if started == 0 else self.workers)
                claims = self.claim(free)
                self._prefetch(claims)
                for c in claims:
                    self._start(c)
                started += len(claims)
                if len(claims) < free:
                    return started  # nothing more is due now
            return started
        finally:
            self._tick_lock.release()

    def _wait_for_room(self, wanted: int) -> int:
        with self._idle:
            self._idle.wait_for(lambda: self._capacity - self._inflight >= wanted or self._closed)
            return self._capacity - self._inflight

    def _start(self, c: Claim) -> None:
        with self._lock:
            try:
                self._queued[c.occ.id or 0] = (self._pool.submit(self._run_and_release, c), c)
            except RuntimeError:  # shut down while this tick was claiming: give it back at once
                started = False
            else:
                started = True
                self._inflight += 1
        if not started:
            self._release(c, "the process is stopping")

    def _run_and_release(self, c: Claim) -> None:
        try:
            self._execute(c, self._complete_later)
        except Exception:  # e.g. the database went away while completing: the lease brings it back
            log.exception("occurrence %s could not be run or recorded; it is retried after its lease", c.occ.key)
        finally:
            with self._idle:
                self._inflight -= 1
                # Only this run's entry: a tick may have taken the occurrence again already (given back, or its
                # completion written), and that claim's entry is what shutdown gives back if it is still queued.
                if (entry := self._queued.get(c.occ.id or 0)) is not None and entry[1] is c:
                    del self._queued[c.occ.id or 0]
                self._idle.notify_all()

    def wait_idle(self, timeout: float = 60) -> None:
        """Wait until no occurrence is running and every completion is recorded."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._inflight == 0 and self._pending_writes == 0, timeout=timeout):
                raise TimeoutError("occurrences still running")

    def run_once(self) -> int:
        """Claim and run everything due now, then wait for it (tests and tools)."""
        started = self.tick()
        self.wait_idle()
        return started

    def shutdown(self, wait: bool = True) -> None:
        """Stop claiming; let running occurrences finish and record every completion (waiting: before this
        returns). Claimed ones still waiting in the queue are not started: they are given back at once, for
        another process (or this one, restarted) to take without waiting for their lease."""
        with self._idle:
            self._closed = True
            self._idle.notify_all()
        self._pool.shutdown(wait=wait, cancel_futures=True)
        with self._idle:
            dropped = [c for future, c in self._queued.values() if future.cancelled()]
            for c in dropped:
                del self._queued[c.occ.id or 0]
            self._inflight -= len(dropped)
            self._idle.notify_all()
        for c in dropped:
            try:
                self._release(c, "the process is stopping")
            except Exception:  # noqa: BLE001 - e.g. the database is gone too: the lease brings it back
                log.warning("occurrence %s could not be given back; it is retried after its lease", c.occ.key)
        with self._idle:  # the writer writes what is queued and stops; later completions are written inline
            self._writer_closed = True
            self._idle.notify_all()
            writer = self._writer
        if wait and writer is not None:
            writer.join()

    # Recording completions in batches.
    def _complete_later(self, occ: Occurrence, completion: Completion) -> None:
        """Queue a completion for the writer thread (written inline once the dispatcher is shut down)."""
        with self._idle:
            if not self._writer_closed:
                self._writes.append((occ, completion))
                self._pending_writes += 1
                if self._writer is None:
                    self._writer = threading.Thread(target=self._write_loop, name="dispatch-writer", daemon=True)
                    self._writer.start()
                self._idle.notify_all()
                return
        self.complete(occ, completion)

    def _write_loop(self) -> None:
        while True:
            with self._idle:
                if not self._idle.wait_for(lambda: self._writes or self._writer_closed, timeout=1.0) or (
                    not self._writes
                ):
                    self._writer = None  # idle for a second, or shut down with nothing left: started again on demand
                    return
                # Let a batch fill while workers are still running (each may bring one more completion).
                deadline = time.monotonic() + self.write_linger
                while len(self._writes) < self._batch and self._inflight and not self._writer_closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._idle.wait(left)
                batch = [self._writes.popleft() for _ in range(min(self._batch, len(self._writes)))]
            try:
                self._write(batch)
            finally:
                with self._idle:
                    self._pending_writes -= len(batch)
                    self._idle.notify_all()

    def _write(self, batch: Sequence[Done]) -> None:
        """One transaction for the batch; if it fails, each completion alone, so that one bad completion never
        loses the others. One that cannot be recorded is retried after its lease, like a crash."""
        if len(batch) > 1:
            try:
                self.complete_many(batch)
                return
            except Exception as exc:  # noqa: BLE001 - e.g. one `apply` broke a constraint: each alone, below
                log.warning("recording %s completions together failed (%s); recording each alone",
                            len(batch), type(exc).__name__)
        for occ, completion in batch:
            try:
                self.complete_many([(occ, completion)])
            except Exception:
                log.exception("occurrence %s could not be recorded; it is retried after its lease", occ.key)

    # Running one occurrence.
    def execute(self, c: Claim) -> None:
        """Run one claimed occurrence and record what it decided before returning."""
        self._execute(c, self.complete)

    def _execute(self, c: Claim, record: Callable[[Occurrence, Completion], object]) -> None:
        occ = c.occ
        executor = self.executors[occ.kind]
        now = self.clock.now()
        if c.post_by is not None and now > c.post_by:
            self._release(c, "waited too long in the queue")  # another process could take it over meanwhile
            return
        stop: NotPosted | None = None
        if occ.not_after is not None and now > occ.not_after:
            stop = NotPosted(f"missed its window: due {occ.due_at:%Y-%m-%d %H:%M} UTC, still runnable until "
                             f"{occ.not_after:%Y-%m-%d %H:%M} UTC, picked up at {now:%Y-%m-%d %H:%M} UTC")
        elif c.superseded:
            stop = NotPosted(c.superseded)
        if stop is not None and not c.reconcile:
            record(occ, Completion(stop.state, note=stop.note))
            return
        ctx = RunContext(occ=occ, slack=self.slack, now=now, reconcile=c.reconcile, clock=self.clock,
                         post_by=c.post_by, lease=self.lease, adopt_only=stop, context=c.context)
        try:
            completion = executor.run(occ, ctx)
        except NotPosted as exc:  # nothing to adopt either
            if occ.failures and exc.state == OccurrenceState.SKIPPED:
                self._give_up(c, executor, f"gave up: {exc.note}", _error_code(occ.last_error))
            else:
                record(occ, Completion(exc.state, note=exc.note))
            return
        except ClaimExpiring:
            self._release(c, "too little of its lease was left to post")
            return
        except SlackError as exc:
            self._failed_attempt(c, executor, exc)
            return
        except Exception as exc:
            log.exception("occurrence %s raised", occ.key)
            self._failed_attempt(c, executor, SlackError("executor", type(exc).__name__))
            return
        record(occ, completion)

    def _release(self, c: Claim, why: str) -> None:
        """Give a claim back at once, unposted, for any process to take (no failure counted). Its "may have
        been posted" mark, if any, stays on the row."""
        local = self.clock.now()
        with self.uow() as s:
            s.execute(self._fenced(c.occ).values(state=OccurrenceState.PENDING.value, run_at=local + c.skew,
                                                 lease_until=None, updated_at=local))
        log.warning("occurrence %s released: %s", c.occ.key, why)

    def _fenced(self, occ: Occurrence) -> Any:
        return sa.update(Occurrence).where(
            col(Occurrence.id) == occ.id, col(Occurrence.claimed_by) == self.worker_id,
            col(Occurrence.attempts) == occ.attempts, col(Occurrence.state) == OccurrenceState.CLAIMED.value,
        )

    def complete(self, occ: Occurrence, completion: Completion) -> bool:
        """Fenced: applies only while this worker still holds the claim. When the run was requested again
        meanwhile (`request_run` moved the revision on), the row goes back to pending to run once more."""
        return self.complete_many([(occ, completion)])[0]

    def complete_many(self, done: Sequence[Done]) -> list[bool]:
        """`complete` for several occurrences in one transaction, each fenced on its own: one whose claim was
        lost is left as it is (False) and its `apply` does not run. The occurrences the applies plan are
        inserted together at the end. Raises, with nothing recorded, when the transaction fails."""
        now = self.clock.now()
        recorded: list[bool] = []
        planned: list[dict[str, Any]] = []
        with self.uow() as s:
            conn = s.connection()
            database_clock = self._on_database_clock(s)
            stmt = _complete_statement(database_clock)
            db_now = {} if database_clock else {"o_db_now": now}
            for occ, completion in done:
                result = conn.execute(stmt, {
                    "o_id": occ.id, "o_worker": self.worker_id, "o_attempts": occ.attempts,
                    "o_revision": occ.revision, "o_state": completion.state.value, "o_note": completion.note,
                    "o_channel": completion.channel, "o_ts": completion.ts, "o_now": now, **db_now})
                if not result.rowcount:
                    log.warning("lost the claim on %s before completing it; the new holder will reconcile", occ.key)
                    recorded.append(False)
                    continue
                recorded.append(True)
                if completion.apply is not None:
                    planned.extend(completion.apply(s) or ())
            if planned:
                s.flush()  # what the applies left in the session goes first (a planned row may refer to it)
                insert_new(s, planned, now)
        return recorded

    def _failed_attempt(self, c: Claim, executor: Executor, error: SlackError) -> None:
        occ = c.occ
        now = self.clock.now()
        policy = executor.policy
        failures = occ.failures
        if error.code in ("ratelimited", "rate_limited"):
            delay = timedelta(seconds=max(error.retry_after or 1, 1))
        else:
            failures += 1
            delay = policy.backoff(failures)
        maybe_posted_at = occ.maybe_posted_at
        if maybe_posted_at is None and (
            error.method == "executor" or (error.status or 0) >= 500
            or (error.transient and error.code not in ("ratelimited", "rate_limited"))
        ):
            maybe_posted_at = occ.updated_at  # the claim: the request may have reached Slack since then
        too_late = occ.not_after is not None and now + delay > occ.not_after
        give_up = error.code in PERMANENT_ERRORS or failures >= policy.max_failures or (
            too_late and maybe_posted_at is None  # else one more attempt looks for (and adopts) its message
        )
        if give_up:
            self._give_up(c, executor, str(error), error.code, failures=failures, maybe_posted_at=maybe_posted_at)
            return
        with self.uow() as s:
            s.execute(self._fenced(occ).values(
                state=OccurrenceState.PENDING.value, run_at=now + delay + c.skew, last_error=str(error)[:500],
                lease_until=None, failures=failures, maybe_posted_at=maybe_posted_at, updated_at=now))
        log.warning("occurrence %s: %s; retrying in %ss", occ.key, error, int(delay.total_seconds()))

    def _give_up(
        self, c: Claim, executor: Executor, note: str, code: str, *, failures: int | None = None,
        maybe_posted_at: datetime | None = None,
    ) -> None:
        """Mark it failed (fenced) and let the executor tell people."""
        occ = c.occ
        values: dict[str, Any] = {"state": OccurrenceState.FAILED.value, "last_error": note[:500], "lease_until": None,
                                  "updated_at": self.clock.now()}
        if failures is not None:
            values["failures"] = failures
        if maybe_posted_at is not None:
            values["maybe_posted_at"] = maybe_posted_at
        with self.uow() as s:
            result = s.execute(self._fenced(occ).values(**values))
            if result.rowcount and executor.on_failure is not None:  # type: ignore[attr-defined]
                executor.on_failure(s, occ, code)
        log.error("occurrence %s failed for good after %s attempt(s): %s", occ.key, occ.attempts, note)

    # Health.
    def beat(self) -> None:
        now = self.clock.now()
        with self.uow() as s:
            stmt = _insert(s)(SchedulerBeat).values(worker_id=self.worker_id, last_tick_at=now)
            s.execute(stmt.on_conflict_do_update(index_elements=["worker_id"], set_={"last_tick_at": now}))


def scheduler_status(uow: UnitOfWork, clock: Clock) -> dict[str, Any]:
    """For /healthz: the last tick of any scheduler process, due-but-unclaimed and failed counts."""
    now = clock.now()
    with uow(read_only=True) as s:
        last = s.exec(select(func.max(SchedulerBeat.last_tick_at))).one()
        due = s.exec(select(func.count()).select_from(Occurrence).where(
            col(Occurrence.state) == OccurrenceState.PENDING.value, col(Occurrence.run_at) <= now)).one()
        failed = s.exec(select(func.count()).select_from(Occurrence).where(
            col(Occurrence.state) == OccurrenceState.FAILED.value)).one()
    return {
        "last_tick": last.isoformat() if last else None,
        "seconds_since_last_tick": round((now - last).total_seconds(), 1) if last else None,
        "due_unclaimed": int(due),
        "failed": int(failed),
    }
