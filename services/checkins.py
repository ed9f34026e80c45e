"""Check-ins: scheduled async stand-ups in a partnership's channel, in the partnership's time zone.

A schedule (weekdays, a local time, an IANA zone) is planned into `checkin_prompt` occurrences keyed by
local date (`checkin:<partnership>:<YYYY-MM-DD>`), so a DST change can never post twice in one day.
Posting a prompt opens a round and plans, in the same fenced transaction, one reminder per participant
and the close. People answer through a modal; their answers go into the prompt's thread, and an edit
updates that reply. At the close the prompt is updated in place with the summary.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from adapters.slack import SlackError
from blocks import checkins as cblocks
from blocks.text import escape, local_time, mention
from models.checkin import (
    ANSWER_MAX,
    DEFAULT_QUESTIONS,
    DEFAULT_WINDOW_MINUTES,
    Away,
    CheckinAnswer,
    CheckinRound,
    CheckinSchedule,
    ParticipantMode,
    Question,
    QuestionKind,
    RoundStatus,
    Tally,
    questions_of,
    set_questions,
    tally,
)
from models.partnership import Member, Partnership, PartnershipStatus
from models.scheduling import Occurrence, OccurrenceState
from services.errors import Invalid, NotFound
from services.inputs import ScheduleInput, validate, validate_questions
from services.partnerships import Outcome, PartnershipFeature, advice
from services.recurrence import Slot, end_of_local_day, local_date, parse_local_time, slots_between
from services.scheduling import (
    CHECKIN_CLOSE,
    CHECKIN_PROMPT,
    CHECKIN_REMIND,
    CHECKIN_REPLY,
    KINDS,
    PERMANENT_ERRORS,
    Completion,
    RunContext,
    Subject,
    insert_new,
    mark_obsolete,
    plan_notices,
    planning_rows,
    request_run,
    skip_by_key,
    upsert_planned,
)

log = logging.getLogger(__name__)

PLAN_HORIZON = timedelta(hours=36)
DELAY_NOTE_AFTER = timedelta(minutes=5)  # a prompt posted later than this says it is delayed
MANUAL_GRACE = timedelta(hours=1)  # a `/partner checkin now` that cannot run within this is dropped
HISTORY_ROUNDS = 10
AWAY_MAX_DAYS = 366

Row = dict[str, Any]  # an occurrence to plan

WHAT_FAILED = {
    CHECKIN_PROMPT: "post the check-in prompt",
    CHECKIN_REMIND: "send a check-in reminder",
    CHECKIN_CLOSE: "post the check-in summary",
    CHECKIN_REPLY: "show your check-in answers in the check-in's thread",
}
# Scheduled work that posts in the partnership's channel, and the errors that say the channel is gone.
IN_CHANNEL = frozenset({CHECKIN_PROMPT, CHECKIN_CLOSE, CHECKIN_REPLY})
CHANNEL_GONE = frozenset({"is_archived", "channel_not_found"})


def prompt_key(partnership_id: int, day: date) -> str:
    return f"checkin:{partnership_id}:{day.isoformat()}"


def manual_key(partnership_id: int, request_key: str) -> str:
    return f"checkin:{partnership_id}:now:{request_key[:120]}"


# The prompt's reads and its round's insert, built once (building a statement costs more CPU than running
# it). A prompt reads its partnership with its schedule (for a whole claimed batch at once: `prefetch_prompts`),
# then the people taking part and who of them is away (as `_participants` and `_away_on` do: recorded
# members who have not left the channel, or the chosen people who have not left it).
_P: sa.Table = Partnership.__table__  # type: ignore[attr-defined]
_S: sa.Table = CheckinSchedule.__table__  # type: ignore[attr-defined]
_M: sa.Table = Member.__table__  # type: ignore[attr-defined]
_A: sa.Table = Away.__table__  # type: ignore[attr-defined]
_R: sa.Table = CheckinRound.__table__  # type: ignore[attr-defined]
_PROMPT_SUBJECTS = (
    sa.select(_P.c.id, _P.c.name, _P.c.channel_id, _P.c.status, _P.c.channel_archived_at, _P.c.timezone,
              _S.c.id.label("schedule_id"), _S.c.paused, _S.c.version, _S.c.timezone.label("schedule_timezone"),
              _S.c.window_minutes, _S.c.remind_before_close_minutes, _S.c.questions, _S.c.question_kinds,
              _S.c.participant_mode, _S.c.participants)
    .select_from(_P.outerjoin(_S, _S.c.partnership_id == _P.c.id))
    .where(_P.c.id.in_(sa.bindparam("ids", expanding=True)))
)
_MEMBERS_AWAY = (  # the partnership's audience in order, and whether each is away on `day`
    sa.select(_M.c.user_id, _A.c.user_id.is_not(None))
    .select_from(_M.outerjoin(_A, sa.and_(_A.c.user_id == _M.c.user_id, _A.c.until >= sa.bindparam("day"))))
    .where(_M.c.partnership_id == sa.bindparam("pid"), _M.c.left_at.is_(None))
    .order_by(_M.c.id)
)
_AWAY_OR_LEFT = sa.union_all(  # of chosen people: who is away on `day`, and who left the channel
    sa.select(_A.c.user_id, sa.literal("away")).where(_A.c.user_id.in_(sa.bindparam("users", expanding=True)),
                                                      _A.c.until >= sa.bindparam("day")),
    sa.select(_M.c.user_id, sa.literal("left")).where(_M.c.partnership_id == sa.bindparam("pid"),
                                                      _M.c.left_at.is_not(None)),
)
_INSERT_ROUND = sa.insert(_R).returning(_R.c.id)
# What planning reads of every active schedule (`_planned_rows`), as Core rows: for thousands of schedules,
# building ORM objects costs more than planning their prompts.
_PLANNED_SCHEDULES = (
    sa.select(_S.c.partnership_id, _S.c.weekdays, _S.c.local_time, _S.c.timezone, _S.c.version,
              _S.c.effective_from)
    .join_from(_S, _P, _P.c.id == _S.c.partnership_id)
    .where(_P.c.status == PartnershipStatus.ACTIVE, _S.c.paused.is_(False), _P.c.channel_archived_at.is_(None))
)


@dataclass
class NewRound:
    """A round about to open: what its prompt shows and what its row gets (lighter than a CheckinRound)."""

    key: str
    partnership_id: int
    local_date: date
    timezone: str
    scheduled_for: datetime
    opened_at: datetime
    closes_at: datetime
    delayed: bool
    manual: bool
    started_by: str | None
    questions: list[str]
    question_kinds: list[str]  # the schedule's at the time: the round keeps them
    participants: list[str]
    away: list[str]
    channel_id: str
    prompt_ts: str | None = None
    status: RoundStatus = field(default=RoundStatus.OPEN)


@dataclass
class Overview:
    partnership: Partnership
    schedule: CheckinSchedule | None
    next_due: datetime | None
    participants: list[str]
    away: dict[str, date]


class CheckinService(PartnershipFeature):
    # -- queries ------------------------------------------------------------------------------------
    def overview(self, *, channel_id: str, actor: str) -> Overview:
        p = self.partnerships.require_member(channel_id, actor, "see its check-ins").partnership
        now = self.clock.now()
        with self.uow(read_only=True) as s:
            sched = self._schedule(s, p.id)
            participants = self._participants(s, p, sched)
            away = {a.user_id: a.until for a in s.exec(select(Away).where(
                col(Away.user_id).in_(participants), col(Away.until) >= local_date(now, p.timezone))).all()}
            next_due = self._next_due(s, sched, now) if sched and not sched.paused else None
        return Overview(p, sched, next_due, participants, away)

    def history(self, *, channel_id: str, actor: str) -> tuple[Partnership, list[tuple[CheckinRound, Tally]]]:
        p = self.partnerships.require_member(channel_id, actor, "see its check-ins").partnership
        with self.uow(read_only=True) as s:
            rounds = list(s.exec(
                select(CheckinRound).where(CheckinRound.partnership_id == p.id)
                .order_by(col(CheckinRound.opened_at).desc()).limit(HISTORY_ROUNDS)
            ).all())
            return p, [(r, self._tally(s, r)) for r in rounds]

    # -- schedule changes (owners) -----------------------------------------------------------------------
    def prepare_setup(self, *, channel_id: str, actor: str) -> tuple[Partnership, CheckinSchedule | None]:
        """Check that `actor` may change the schedule; returns what the setup form starts from."""
        p = self.partnerships.require_owner(channel_id, actor, "set up its check-ins").partnership
        with self.uow(read_only=True) as s:  # before the form opens: never waits for a writer
            return p, self._schedule(s, p.id)

    def save_schedule(self, *, partnership_id: int, actor: str, inp: ScheduleInput) -> Outcome:
        p = self.partnerships.require_owner_by_id(partnership_id, actor, "set up its check-ins").partnership
        now = self.clock.now()
        with self.uow() as s:
            sched = self._schedule(s, p.id)
            created = sched is None
            if sched is None:
                sched = CheckinSchedule(partnership_id=p.id, weekdays="", local_time="", timezone="", updated_by=actor)
            sched.weekdays = ",".join(inp.weekdays)
            sched.local_time = inp.local_time
            sched.timezone = inp.timezone
            set_questions(sched, inp.questions)
            sched.window_minutes = inp.window_minutes
            sched.remind_before_close_minutes = inp.remind_before_close_minutes
            sched.participant_mode = inp.participant_mode
            sched.participants = list(inp.participants)
            self._changed(s, sched, actor, now)
            self.partnerships.audit(s, p, actor, "checkin_scheduled", weekdays=sched.weekdays,
                                    local_time=sched.local_time, timezone=sched.timezone)
            next_due = self._next_due(s, sched, now) if not sched.paused else None
            line = cblocks.schedule_line(sched)
            paused = sched.paused
        nxt = local_time(next_due, inp.timezone) if next_due else "none"
        if paused:
            nxt = "none while paused (`/partner checkin resume` restarts them)"
        verb = "set up" if created else "changed"
        self._announce(p, f":spiral_calendar_pad: {mention(actor)} {verb} the check-ins: {line}. Next: {nxt}.")
        return Outcome(f":white_check_mark: Check-ins for *{escape(p.name)}*: {line}. Next: {nxt}.", partnership=p)

    def quick_schedule(self, *, channel_id: str, actor: str, args: str) -> Outcome:
        """`mon,wed,fri 09:30 [Area/City]`: keeps the questions, window and participants already set."""
        p = self.partnerships.require_owner(channel_id, actor, "set up its check-ins").partnership
        parts = args.split()
        if len(parts) not in (2, 3):
            raise Invalid("Usage: `/partner checkin schedule mon,wed,fri 09:30 [Europe/Berlin]` "
                          "(weekdays, local time, and optionally an IANA time zone).")
        with self.uow() as s:
            current = self._schedule(s, p.id)
        base = {
            "questions": questions_of(current) if current else list(DEFAULT_QUESTIONS),
            "window_minutes": current.window_minutes if current else DEFAULT_WINDOW_MINUTES,
            "remind_before_close_minutes": current.remind_before_close_minutes if current else None,
            "participant_mode": current.participant_mode if current else ParticipantMode.ALL,
            "participants": current.participants if current else [],
        }
        zone = parts[2] if len(parts) == 3 else (current.timezone if current else p.timezone)
        inp = validate(ScheduleInput, weekdays=parts[0], local_time=parts[1], timezone=zone, **base)
        return self.save_schedule(partnership_id=p.id, actor=actor, inp=inp)

    def pause(self, *, channel_id: str, actor: str) -> Outcome:
        p = self.partnerships.require_owner(channel_id, actor, "pause its check-ins").partnership
        now = self.clock.now()
        with self.uow() as s:
            sched = self._require_schedule(s, p)
            if sched.paused:
                return Outcome(f"Check-ins for *{escape(p.name)}* are already paused.", partnership=p)
            sched.paused = True
            self._changed(s, sched, actor, now)
            self.partnerships.audit(s, p, actor, "checkin_paused")
        self._announce(p, f":double_vertical_bar: {mention(actor)} paused the check-ins.")
        return Outcome(f":double_vertical_bar: Paused check-ins for *{escape(p.name)}*. "
                       "`/partner checkin resume` restarts them.", partnership=p)

    def resume(self, *, channel_id: str, actor: str) -> Outcome:
        p = self.partnerships.require_owner(channel_id, actor, "resume its check-ins").partnership
        now = self.clock.now()
        with self.uow() as s:
            sched = self._require_schedule(s, p)
            if not sched.paused:
                return Outcome(f"Check-ins for *{escape(p.name)}* are not paused.", partnership=p)
            sched.paused = False
            self._changed(s, sched, actor, now)
            self.partnerships.audit(s, p, actor, "checkin_resumed")
            next_due = self._next_due(s, sched, now)
        nxt = local_time(next_due, sched.timezone) if next_due else "none"
        self._announce(p, f":arrow_forward: {mention(actor)} resumed the check-ins. Next: {nxt}.")
        return Outcome(f":arrow_forward: Resumed check-ins for *{escape(p.name)}*. Next: {nxt}.", partnership=p)

    def skip_next(self, *, channel_id: str, actor: str) -> Outcome:
        p = self.partnerships.require_owner(channel_id, actor, "skip a check-in").partnership
        now = self.clock.now()
        with self.uow() as s:
            sched = self._require_schedule(s, p)
            if sched.paused:
                raise Invalid(f"Check-ins for *{escape(p.name)}* are paused; nothing is coming up to skip.")
            row = self._next_row(s, sched, now)
            if row is None:
                raise Invalid("There is no upcoming check-in to skip.")
            skip_by_key(s, [row], now, f"skipped by {actor}")
            self.partnerships.audit(s, p, actor, "checkin_skipped", key=row["key"])
            following = self._next_due(s, sched, now)
        skipped = local_time(row["due_at"], sched.timezone)
        after = local_time(following, sched.timezone) if following else "none"
        self._announce(p, f":fast_forward: {mention(actor)} skipped the check-in of {skipped}. Next: {after}.")
        return Outcome(f":fast_forward: Skipped the check-in of {skipped}. The next one: {after}.", partnership=p)

    def prepare_questions(self, *, channel_id: str, actor: str) -> tuple[Partnership, list[Question]]:
        p = self.partnerships.require_owner(channel_id, actor, "change its check-in questions").partnership
        with self.uow(read_only=True) as s:
            return p, questions_of(self._require_schedule(s, p))

    def save_questions(self, *, partnership_id: int, actor: str, questions: Sequence[Question | str]) -> Outcome:
        """Set the questions with their kinds (plain, blocker, need); the next rounds ask them."""
        p = self.partnerships.require_owner_by_id(partnership_id, actor, "change its check-in questions").partnership
        cleaned = validate_questions(list(questions))
        with self.uow() as s:
            sched = self._require_schedule(s, p)
            set_questions(sched, cleaned)
            sched.updated_by, sched.updated_at = actor, self.clock.now()
            s.add(sched)
            self.partnerships.audit(s, p, actor, "checkin_questions_changed", questions=[q.line for q in cleaned])
        kinds = [f"{n} {label}" for kind, label in ((QuestionKind.BLOCKER, "about blockers"),
                                                    (QuestionKind.NEED, "about needs from the partner"))
                 if (n := sum(q.kind == kind for q in cleaned))]
        listed = f" ({', '.join(kinds)}: the summary lists their answers)" if kinds else \
            " (none about blockers or needs: start a line with `Blocker:` or `Need:` to list their answers)"
        return Outcome(f":white_check_mark: The next check-ins of *{escape(p.name)}* ask {len(cleaned)} "
                       f"question(s){listed}.", partnership=p)

    def run_now(self, *, channel_id: str, actor: str, request_key: str) -> Outcome:
        """Plan a check-in due now (any member may). One at a time: refused while a check-in of this
        partnership is open or one started this way is still to be posted."""
        p = self.partnerships.require_member(channel_id, actor, "start a check-in").partnership
        now = self.clock.now()
        with self.uow() as s:
            s.get(Partnership, p.id, with_for_update=True)  # concurrent requests check one after the other
            sched = self._schedule(s, p.id)
            if sched is not None and sched.paused:
                raise Invalid(f"Check-ins for *{escape(p.name)}* are paused. An owner restarts them with "
                              "`/partner checkin resume`.")
            # The prompt's occurrence first, then the rounds: a prompt completing in between commits its round
            # with its done state, so one of the two reads sees it (PostgreSQL reads each statement afresh).
            starting = s.exec(select(Occurrence.key).where(
                col(Occurrence.key).startswith(manual_key(p.id, "")), Occurrence.kind == CHECKIN_PROMPT,
                col(Occurrence.state).in_([OccurrenceState.PENDING.value, OccurrenceState.CLAIMED.value]))).first()
            current = s.exec(select(CheckinRound).where(CheckinRound.partnership_id == p.id,
                                                        CheckinRound.status == RoundStatus.OPEN)
                             .order_by(col(CheckinRound.closes_at).desc())).first()
            if current is not None:
                raise Invalid(f"A check-in of *{escape(p.name)}* is open until "
                              f"{local_time(current.closes_at, current.timezone)}: answer that one "
                              "(its *Answer* button is in the channel), or start another after it closes.")
            if starting is not None and starting != manual_key(p.id, request_key):  # not this request, repeated
                raise Invalid(f"A check-in of *{escape(p.name)}* was just started and is being posted.")
            zone = sched.timezone if sched else p.timezone
            insert_new(s, [{
                "key": manual_key(p.id, request_key), "kind": CHECKIN_PROMPT, "subject_id": p.id, "due_at": now,
                "not_after": now + MANUAL_GRACE,
                "payload": {"manual": True, "local_date": local_date(now, zone).isoformat(), "started_by": actor},
            }], now)
            self.partnerships.audit(s, p, actor, "checkin_started")
        self.wake()
        return Outcome(f":rocket: Starting a check-in for *{escape(p.name)}* now.", partnership=p)

    # -- away ------------------------------------------------------------------------------------------------
    def set_away(self, *, user_id: str, until_text: str) -> str:
        text = until_text.strip().removeprefix("until").strip()
        try:
            until = date.fromisoformat(text)
        except ValueError:
            raise Invalid("Say until when, as a date: `/partner away until 2026-12-24` (inclusive).") from None
        today = self.clock.now().date()
        if until < today - timedelta(days=1):
            raise Invalid(f"{until.isoformat()} is in the past. Give a date from today on.")
        if until > today + timedelta(days=AWAY_MAX_DAYS):
            raise Invalid(f"{until.isoformat()} is more than a year ahead; give a nearer date.")
        with self.uow() as s:
            away = s.get(Away, user_id) or Away(user_id=user_id, until=until)
            away.until, away.set_at = until, self.clock.now()
            s.add(away)
        return (f":palm_tree: You are away until {until.strftime('%a %d %b %Y')} (inclusive): no check-in prompts or "
                "reminders for you until then, and check-ins count you as away, not missing. `/partner back` ends "
                "it early.")

    def back(self, *, user_id: str) -> str:
        with self.uow() as s:
            away = s.get(Away, user_id)
            if away is None:
                return "You were not marked away."
            s.delete(away)
        return ":wave: Welcome back: check-ins include you again."

    # -- answers -------------------------------------------------------------------------------------------------
    def answer_form(self, *, round_key: str, user_id: str) -> dict[str, Any]:
        """The answer modal for this person (with their earlier answers, to edit)."""
        with self.uow(read_only=True) as s:  # before the form opens: never waits for a writer
            r, p = self._open_round(s, round_key, user_id)
            existing = self._answer(s, r, user_id)
            return cblocks.answer_modal(p.name, r, round_key=round_key, answers=existing.answers if existing else [])

    def check_answer(self, *, round_key: str, user_id: str, answers: Sequence[str]) -> None:
        """Raise what a submission of these answers would be refused for (the modal shows it)."""
        _check_answers(answers)
        with self.uow(read_only=True) as s:  # before the form is answered: never waits for a writer
            self._open_round(s, round_key, user_id)

    def submit_answer(self, *, round_key: str, user_id: str, answers: Sequence[str]) -> Outcome:
        """Save a person's answers; their reply in the prompt's thread is posted (or, after an edit, updated)
        by the answer's `checkin_reply` occurrence, exactly once however often they submit."""
        answers = _check_answers(answers)
        now = self.clock.now()
        for attempt in range(2):
            try:
                with self.uow() as s:
                    r, p = self._open_round(s, round_key, user_id, lock=True)
                    answers = answers[: len(r.questions)]
                    a = self._answer(s, r, user_id)
                    edited = a is not None
                    if a is None:
                        assert r.id is not None
                        a = CheckinAnswer(round_id=r.id, user_id=user_id, answers=answers, created_at=now,
                                          updated_at=now)
                    else:
                        a.answers, a.revision, a.updated_at = list(answers), a.revision + 1, now
                    s.add(a)
                    s.flush()
                    assert a.id is not None
                    request_run(s, [{"key": f"{CHECKIN_REPLY}:{a.id}", "kind": CHECKIN_REPLY, "subject_id": a.id,
                                     "due_at": now}], now)
                break
            except IntegrityError:  # two first submissions at once: the second one edits
                if attempt:
                    raise
        self.wake()
        if edited:
            return Outcome(":white_check_mark: Your answers are updated; the check-in's thread shows them in a "
                           "moment.", partnership=p)
        return Outcome(":white_check_mark: Thanks, your answers are saved; they appear in the check-in's thread "
                       "in a moment.", partnership=p)

    # -- scheduled work -------------------------------------------------------------------------------------------
    def plan(self, now: datetime | None = None) -> int:
        """Plan every active schedule's prompts for the next hours (idempotent; any replica may run it)."""
        now = now or self.clock.now()
        with self.uow() as s:
            rows = []
            for sched in planning_rows(s.connection(), _PLANNED_SCHEDULES):
                rows += self._planned_rows(sched, now)
            # Two statements for any number of schedules: nearly every row is planned already.
            upsert_planned(s, rows, now, skip_planned=True)
        return len(rows)

    def prefetch_prompts(self, occs: Sequence[Occurrence]) -> dict[Any, Any]:
        """For a claimed batch of prompts: each one's partnership with its schedule, in one query (by subject
        id; None for one that no longer exists)."""
        ids = list({occ.subject_id for occ in occs})
        with self.uow(read_only=True) as s:
            found: dict[Any, Any] = {row.id: row for row in s.connection().execute(_PROMPT_SUBJECTS, {"ids": ids})}
        return {pid: found.get(pid) for pid in ids}

    def run_prompt(self, occ: Occurrence, ctx: RunContext) -> Completion:
        manual = bool(occ.payload.get("manual"))
        with self.uow(read_only=True) as s:
            conn = s.connection()
            # Read with its batch right after the claim (prefetch_prompts): a change made since is no different
            # from one made between this read and the post.
            if occ.subject_id in ctx.context:
                p = ctx.context[occ.subject_id]
            else:
                p = conn.execute(_PROMPT_SUBJECTS, {"ids": [occ.subject_id]}).first()
            if p is None or not p.channel_id:
                return Completion.obsolete("the partnership no longer exists")
            scheduled = p.schedule_id is not None
            # No longer wanted: done, unless an earlier attempt already posted it (then that prompt is
            # adopted and its round opened, so its Answer button works and it gets its summary).
            unwanted = (
                "the partnership is closed" if p.status != PartnershipStatus.ACTIVE
                else "the channel is archived" if p.channel_archived_at is not None
                else "check-ins are paused" if scheduled and p.paused
                else None if manual
                else "check-ins are not scheduled any more" if not scheduled
                else "the schedule changed after this prompt was planned" if occ.revision != p.version
                else None
            )
            if unwanted is not None and (done := ctx.unless_posted(unwanted)) is not None:
                return done
            zone = p.schedule_timezone if scheduled else p.timezone
            day = date.fromisoformat(occ.payload["local_date"]) if occ.payload.get("local_date") else \
                local_date(ctx.now, zone)
            if scheduled and p.participant_mode == ParticipantMode.CHOSEN:
                marks = conn.execute(_AWAY_OR_LEFT, {"users": list(p.participants), "day": day, "pid": p.id}).all()
                gone = {user for user, mark in marks if mark == "left"}
                away = {user for user, mark in marks if mark == "away"}
                participants = [u for u in dict.fromkeys(p.participants) if u != self.bot_user_id and u not in gone]
            else:
                people = conn.execute(_MEMBERS_AWAY, {"pid": p.id, "day": day}).all()
                participants = [u for u in dict.fromkeys(user for user, _ in people) if u != self.bot_user_id]
                away = {user for user, is_away in people if is_away}
        window = timedelta(minutes=p.window_minutes if scheduled else DEFAULT_WINDOW_MINUTES)
        remind = p.remind_before_close_minutes if scheduled else None
        questions = questions_of(p) if scheduled else DEFAULT_QUESTIONS
        r = NewRound(
            key=occ.key, partnership_id=p.id, local_date=day, timezone=zone, scheduled_for=occ.due_at,
            opened_at=ctx.now, closes_at=ctx.now + window,
            delayed=not manual and ctx.now - occ.due_at > DELAY_NOTE_AFTER, manual=manual,
            started_by=occ.payload.get("started_by"),
            questions=[q.text for q in questions], question_kinds=[q.kind.value for q in questions],
            participants=participants, away=sorted(away.intersection(participants)), channel_id=p.channel_id,
        )
        channel, ts = ctx.post(r.channel_id, text=cblocks.prompt_text(p.name),
                               blocks=cblocks.prompt_blocks(p.name, r, round_key=occ.key),
                               extra={"opened_at": r.opened_at.isoformat(), "closes_at": r.closes_at.isoformat()})
        r.channel_id, r.prompt_ts = channel, ts
        if ctx.adopted is not None:  # posted by an earlier attempt: keep the times that prompt shows
            shown = (ctx.adopted.get("metadata") or {}).get("event_payload") or {}
            if shown.get("opened_at") and shown.get("closes_at"):
                r.opened_at = datetime.fromisoformat(shown["opened_at"])
                r.closes_at = datetime.fromisoformat(shown["closes_at"])

        def open_round(s: Session) -> list[Row]:
            # Runs only inside the fenced completion of this occurrence, so at most once per key. The
            # reminders and the close it plans are inserted with those of the other prompts of its batch.
            round_id = s.connection().execute(_INSERT_ROUND, dict(r.__dict__)).scalar_one()
            return self._round_rows(round_id, r, remind, window)

        return Completion.done(channel, ts, apply=open_round)

    def run_reminder(self, occ: Occurrence, ctx: RunContext) -> Completion:
        user = str(occ.payload["user"])
        with self.uow(read_only=True) as s:
            r = s.get(CheckinRound, occ.subject_id)
            if r is None or r.status == RoundStatus.CLOSED:
                return Completion.obsolete("the check-in has closed")
            if self._answer(s, r, user) is not None:
                return Completion.obsolete("already answered")
            if self._away_on(s, [user], local_date(ctx.now, r.timezone)):
                return Completion.obsolete("away")
            p = s.get(Partnership, r.partnership_id)
            if p is None or p.status != PartnershipStatus.ACTIVE:
                return Completion.obsolete("the partnership is closed")
            name = p.name
        channel, ts = ctx.post(user, text=cblocks.reminder_text_for(name),
                               blocks=cblocks.reminder_blocks(name, r, round_key=r.key))
        return Completion.done(channel, ts)

    def run_close(self, occ: Occurrence, ctx: RunContext) -> Completion:
        with self.uow() as s:
            r = s.get(CheckinRound, occ.subject_id, with_for_update=True)  # waits for an answer being saved
            if r is None:
                return Completion.obsolete("the check-in no longer exists")
            if r.status == RoundStatus.OPEN:  # from here on no answer is taken; closing twice is harmless
                answered = {a.user_id for a in s.exec(select(CheckinAnswer).where(CheckinAnswer.round_id == r.id))}
                # Who was away is fixed now: the summary and the history keep saying the same.
                away_now = self._away_on(s, [u for u in r.participants if u not in answered], r.local_date)
                r.away = sorted(set(r.away) | away_now)
                r.status, r.closed_at = RoundStatus.CLOSED, ctx.now
                s.add(r)
            p = s.get(Partnership, r.partnership_id)
            if p is None or p.status != PartnershipStatus.ACTIVE:
                return Completion.obsolete("the partnership is closed")
            t = self._tally(s, r)
            name = p.name
        text, blocks = cblocks.summary_text(name, t), cblocks.summary_blocks(name, r, t)
        if r.prompt_ts:
            try:
                ctx.slack.update(r.channel_id, r.prompt_ts, text=text, blocks=blocks)
                return Completion.done(r.channel_id, r.prompt_ts)
            except SlackError as exc:
                if exc.code not in ("message_not_found", "cant_update_message", "edit_window_closed"):
                    raise
        channel, ts = ctx.post(r.channel_id, text=text, blocks=blocks)  # the prompt is gone: post it anew
        return Completion.done(channel, ts)

    def run_reply(self, occ: Occurrence, ctx: RunContext) -> Completion:
        """Show a person's answers in the prompt's thread: post the reply once, then update it in place."""
        with self.uow(read_only=True) as s:
            a = s.get(CheckinAnswer, occ.subject_id)
            r = s.get(CheckinRound, a.round_id) if a is not None else None
            if a is None or r is None or not r.prompt_ts:
                return Completion.obsolete("the answer or its check-in no longer exists")
            user, reply_ts, answer_id = a.user_id, a.reply_ts, a.id
            text, blocks = cblocks.answer_reply_text(user), cblocks.answer_reply_blocks(user, r.questions, a.answers)
        if reply_ts is not None:
            try:
                ctx.slack.update(r.channel_id, reply_ts, text=text, blocks=blocks)
                return Completion.done(r.channel_id, reply_ts)
            except SlackError as exc:
                if exc.code != "message_not_found":
                    raise  # the reply was deleted: post it again, below
        channel, ts = ctx.post(r.channel_id, text=text, blocks=blocks, thread_ts=r.prompt_ts)
        if ctx.adopted is not None:  # posted by an earlier attempt, maybe with answers edited since
            ctx.slack.update(channel, ts, text=text, blocks=blocks)

        def record(s: Session) -> None:
            row = s.get(CheckinAnswer, answer_id)
            if row is not None:
                row.reply_ts = ts
                s.add(row)

        return Completion.done(channel, ts, apply=record)

    def on_failure(self, s: Session, occ: Occurrence, error: str) -> None:
        """Scheduled work failed for good (runs in the transaction that marks it failed). A channel archived
        or deleted outside Partnerbot stops scheduling for the partnership, and its owners are told once;
        otherwise the owners (for an answer: its author) are told what failed and what to do: for an error
        retrying cannot fix (the bot removed from the channel, say), once until a prompt is posted again; for
        others, at most once a day per kind of failure."""
        p = self.partnership_of(s, occ)
        if p is None or p.status != PartnershipStatus.ACTIVE:
            return
        now = self.clock.now()
        if occ.kind in IN_CHANNEL and error in CHANNEL_GONE:
            self.partnerships.mark_channel(s, p, gone=True, error=error)
            return
        if occ.kind == CHECKIN_REPLY:
            a = s.get(CheckinAnswer, occ.subject_id)
            people = [a.user_id] if a is not None else []
        else:
            people = self.partnerships.owners(s, p.id)
        hint = advice(error)
        if error == "not_in_channel":
            hint = "Invite Partnerbot back to the channel (`/invite @Partnerbot`), then run `/partner checkin now`."
        text = cblocks.failure_notice(WHAT_FAILED.get(occ.kind, "run a scheduled task"), p.name, p.channel_id,
                                      error, hint)
        assert p.id is not None
        if error in PERMANENT_ERRORS and occ.kind != CHECKIN_REPLY:
            # Told once for as long as it lasts: until a check-in prompt is posted again.
            last_posted = s.exec(select(func.max(Occurrence.id)).where(
                Occurrence.kind == CHECKIN_PROMPT, Occurrence.subject_id == p.id,
                Occurrence.state == OccurrenceState.DONE.value)).one()
            key = f"notice:{p.id}:{error}:after:{last_posted or 0}"
        else:
            key = f"notice:{p.id}:{occ.kind}:{error}:{local_date(now, p.timezone).isoformat()}"
        plan_notices(s, subject_id=p.id, people=people, text=text, now=now, key=key)

    def on_reminder_failure(self, s: Session, occ: Occurrence, error: str) -> None:
        """A reminder Slack refused for good (a deactivated person, say): the round's summary lists it."""
        r = s.get(CheckinRound, occ.subject_id, with_for_update=True)
        if r is None:
            return
        user = str(occ.payload.get("user", ""))
        r.undelivered = [*(u for u in r.undelivered if u.get("user") != user), {"user": user, "error": error}]
        s.add(r)

    def partnership_of(self, s: Session, occ: Occurrence) -> Partnership | None:
        """The partnership an occurrence of a check-in kind is about, through its subject."""
        subject = KINDS[occ.kind].subject
        pid: int | None = occ.subject_id
        if subject == Subject.CHECKIN_ANSWER:
            a = s.get(CheckinAnswer, occ.subject_id)
            subject, pid = Subject.CHECKIN_ROUND, a.round_id if a is not None else None
        if subject == Subject.CHECKIN_ROUND and pid is not None:
            r = s.get(CheckinRound, pid)
            pid = r.partnership_id if r is not None else None
        return s.get(Partnership, pid) if pid is not None else None

    # -- helpers ---------------------------------------------------------------------------------------------------
    def _schedule(self, s: Session, partnership_id: int | None) -> CheckinSchedule | None:
        return s.exec(select(CheckinSchedule).where(CheckinSchedule.partnership_id == partnership_id)).first()

    def _require_schedule(self, s: Session, p: Partnership) -> CheckinSchedule:
        sched = self._schedule(s, p.id)
        if sched is None:
            raise Invalid(f"*{escape(p.name)}* has no check-in schedule yet. Set one up with "
                          "`/partner checkin setup` or `/partner checkin schedule mon,wed,fri 09:30`.")
        return sched

    def _changed(self, s: Session, sched: CheckinSchedule, actor: str, now: datetime) -> None:
        """A timing change: new version, nothing before now is planned, future prompts re-planned."""
        sched.version = (sched.version or 0) + 1
        sched.effective_from = now
        sched.updated_by, sched.updated_at = actor, now
        s.add(sched)
        s.flush()
        mark_obsolete(s, kinds=[CHECKIN_PROMPT], subject_id=sched.partnership_id, now=now,
                      note="the schedule changed", due_after=now)
        if not sched.paused:
            upsert_planned(s, self._planned_rows(sched, now), now)

    # `sched`: a schedule, or a row of the columns planning reads (`_PLANNED_SCHEDULES`).
    def _planned_rows(self, sched: CheckinSchedule | sa.Row[Any], now: datetime) -> list[Row]:
        grace = KINDS[CHECKIN_PROMPT].policy.grace
        assert grace is not None
        return [self._prompt_row(sched, slot) for slot in self._slots(sched, max(now - grace, sched.effective_from),
                                                                       now + PLAN_HORIZON)]

    def _slots(self, sched: CheckinSchedule | sa.Row[Any], start: datetime, end: datetime) -> list[Slot]:
        return list(slots_between(tuple(sched.weekdays.split(",")), parse_local_time(sched.local_time),
                                  sched.timezone, start, end))

    def _prompt_row(self, sched: CheckinSchedule | sa.Row[Any], slot: Slot) -> Row:
        """The occurrence of one slot: keyed by local date, runnable until grace or the local day's end."""
        return {
            "key": prompt_key(sched.partnership_id, slot.local_date), "kind": CHECKIN_PROMPT,
            "subject_id": sched.partnership_id, "due_at": slot.due_at, "revision": sched.version,
            "not_after": KINDS[CHECKIN_PROMPT].policy.not_after(
                slot.due_at, end_of_local_day(slot.local_date, sched.timezone)),
            "payload": {"local_date": slot.local_date.isoformat()},
        }

    def _next_row(self, s: Session, sched: CheckinSchedule, now: datetime) -> Row | None:
        """The next slot after now that is still to run (not skipped, not already run)."""
        upcoming = self._slots(sched, max(now, sched.effective_from), now + timedelta(days=60))
        keys = [prompt_key(sched.partnership_id, slot.local_date) for slot in upcoming]
        done = set(s.exec(select(Occurrence.key).where(
            col(Occurrence.key).in_(keys),
            col(Occurrence.state).in_([OccurrenceState.SKIPPED.value, OccurrenceState.DONE.value,
                                       OccurrenceState.CLAIMED.value]))).all())
        return next((self._prompt_row(sched, slot) for slot, key in zip(upcoming, keys, strict=True)
                     if key not in done), None)

    def _next_due(self, s: Session, sched: CheckinSchedule, now: datetime) -> datetime | None:
        row = self._next_row(s, sched, now)
        return row["due_at"] if row else None

    def _round_rows(self, round_id: int, r: NewRound, remind: int | None, window: timedelta) -> list[Row]:
        rows: list[Row] = [{"key": f"checkin_close:{round_id}", "kind": CHECKIN_CLOSE, "subject_id": round_id,
                             "due_at": r.closes_at}]
        if remind == 0:
            return rows
        remind_at = r.opened_at + window / 2 if remind is None else r.closes_at - timedelta(minutes=remind)
        if remind_at <= r.opened_at:
            return rows
        for user in r.participants:
            if user not in r.away:
                rows.append({"key": f"checkin_remind:{round_id}:{user}", "kind": CHECKIN_REMIND, "subject_id": round_id,
                             "due_at": remind_at, "not_after": r.closes_at, "payload": {"user": user}})
        return rows

    def _participants(self, s: Session, p: Partnership, sched: CheckinSchedule | None) -> list[str]:
        if sched is not None and sched.participant_mode == ParticipantMode.CHOSEN:
            gone = self.partnerships.left_channel(s, p.id or 0)  # chosen, but no longer in the channel
            people = [u for u in sched.participants if u not in gone]
        else:
            people = [m.user_id for m in self.partnerships.audience(s, p.id or 0)]  # not those who left
        return [u for u in dict.fromkeys(people) if u != self.bot_user_id]

    def _away_on(self, s: Session, users: Sequence[str], day: date) -> set[str]:
        return away_on(s, users, day)

    def _answer(self, s: Session, r: CheckinRound, user_id: str) -> CheckinAnswer | None:
        return s.exec(select(CheckinAnswer).where(CheckinAnswer.round_id == r.id,
                                                  CheckinAnswer.user_id == user_id)).first()

    def _tally(self, s: Session, r: CheckinRound) -> Tally:
        """A closed round counts who was away when it closed (saved in the round); an open one, who is now."""
        answers = list(s.exec(select(CheckinAnswer).where(CheckinAnswer.round_id == r.id)).all())
        away_now = self._away_on(s, r.participants, r.local_date) if r.status == RoundStatus.OPEN else set()
        return tally(r, answers, away_now)

    def _open_round(
        self, s: Session, round_key: str, user_id: str, *, lock: bool = False
    ) -> tuple[CheckinRound, Partnership]:
        """The open round of this key, if `user_id` may answer it. `lock`: hold its row until the caller's
        unit of work ends, so the close cannot tally between this check and the answer being saved."""
        query = select(CheckinRound).where(CheckinRound.key == round_key)
        r = s.exec(query.with_for_update() if lock else query).first()
        p = s.get(Partnership, r.partnership_id) if r else None
        if r is None or p is None:
            raise NotFound("This check-in no longer exists.")
        self.partnerships.authorize(s, p, user_id, "answer its check-ins", also=r.participants, open_only=False)
        if r.status == RoundStatus.CLOSED or p.status != PartnershipStatus.ACTIVE:
            closed = local_time(r.closed_at or r.closes_at, r.timezone)
            raise Invalid(f"This check-in closed at {closed}; answers are no longer taken. "
                          "`/partner checkin` shows when the next one is.")
        return r, p

    def _announce(self, p: Partnership, text: str) -> None:
        """Shared news in the partnership's channel; best effort (the change itself is already saved)."""
        if not p.channel_id:
            return
        try:
            self.slack.post(p.channel_id, text=text, key=f"announce:{p.id}:{uuid.uuid4().hex}")
        except SlackError as exc:
            log.warning("could not announce a check-in change in %s: %s", p.channel_id, exc.code)


def away_on(s: Session, users: Sequence[str], day: date) -> set[str]:
    """Who of `users` is away (`/partner away`) on `day`: no check-in prompts, reminders or poll reminders."""
    if not users:
        return set()
    return set(s.exec(select(Away.user_id).where(col(Away.user_id).in_(list(users)), col(Away.until) >= day)).all())


def _check_answers(answers: Sequence[str]) -> list[str]:
    cleaned = [a.strip() for a in answers]
    if not any(cleaned):
        raise Invalid("Answer at least one question.", {"q0": "Answer at least one question."})
    too_long = {f"q{i}": f"This answer is {len(a)} characters long; the limit is {ANSWER_MAX}."
                for i, a in enumerate(cleaned) if len(a) > ANSWER_MAX}
    if too_long:
        raise Invalid(" ".join(too_long.values()), too_long)
    return cleaned
