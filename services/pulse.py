"""Pulse surveys: a recurring partnership-health survey in the partnership's channel.

A schedule (every N weeks on a weekday, or the first..fourth / last weekday of the month, at a local time in an
IANA zone) is planned into `pulse_open` occurrences keyed by local date (`pulse:<partnership>:<YYYY-MM-DD>`), with
the check-ins' misfire rules. Opening a round posts the survey message and plans, in the same fenced
transaction, one reminder per person asked and the close. At the close the message is updated in place with the
results, and the open answers go into its thread without names (`pulse_answers`).

Anonymity: a response row holds no Slack user id in an anonymous round (only the responder's side). Answering
again replaces the earlier response, found by `responder`: an HMAC of (round, person) under a key that is never
stored in the database (config.settings.anonymity_key). Nothing here logs who answered.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from adapters.clock import Clock
from adapters.slack import SlackError, SlackGateway
from blocks import pulse as pblocks
from blocks.checkins import failure_notice
from blocks.text import escape, local_time, mention
from models.checkin import Away
from models.db import UnitOfWork
from models.partnership import Partnership, PartnershipStatus, Side
from models.pulse import (
    DEFAULT_OPEN_DAYS,
    DEFAULT_PULSE_QUESTIONS,
    OPEN_ANSWER_MAX,
    RATING_MAX,
    RATING_MIN,
    Audience,
    CadenceKind,
    PulseResponse,
    PulseResults,
    PulseRound,
    PulseSchedule,
    PulseStatus,
    QuestionKind,
    QuestionResult,
)
from models.scheduling import Occurrence, OccurrenceState
from services.errors import Invalid, NotFound
from services.inputs import PulseScheduleInput
from services.partnerships import Outcome, PartnershipFeature, PartnershipService, advice
from services.recurrence import (
    Cadence,
    Slot,
    cadence_slots_between,
    end_of_local_day,
    local_date,
    parse_local_time,
)
from services.scheduling import (
    KINDS,
    PULSE_ANSWERS,
    PULSE_CLOSE,
    PULSE_OPEN,
    PULSE_REMIND,
    Completion,
    RunContext,
    insert_new,
    mark_obsolete,
    plan_notices,
    planning_rows,
    upsert_planned,
)
from services.stats import summarize

log = logging.getLogger(__name__)

PLAN_HORIZON = timedelta(hours=36)
LOOKAHEAD = timedelta(days=12 * 7 + 35)  # far enough to find the next round of any cadence
MANUAL_GRACE = timedelta(hours=1)  # a `/partner pulse now` that cannot run within this is dropped
REMIND_BEFORE_CLOSE = timedelta(days=1)  # the one reminder: a day before the close (halfway for shorter rounds)
SIDES = (Side.OURS.value, Side.PARTNER.value)
WHAT_FAILED = {
    PULSE_OPEN: "post the partnership pulse survey",
    PULSE_CLOSE: "post the partnership pulse results",
    PULSE_ANSWERS: "post the pulse's open answers",
}
CHANNEL_GONE = frozenset({"is_archived", "channel_not_found"})

Row = dict[str, Any]


def open_key(partnership_id: int, day: date) -> str:
    return f"pulse:{partnership_id}:{day.isoformat()}"


def manual_key(partnership_id: int, request_key: str) -> str:
    return f"pulse:{partnership_id}:now:{request_key[:120]}"


def cadence_of(s: PulseSchedule | sa.Row[Any]) -> Cadence:
    """A schedule's cadence (`s`: a schedule, or a row of its cadence columns)."""
    if s.cadence == CadenceKind.WEEKS:
        return Cadence(s.weekday, every_weeks=s.every_weeks, anchor=s.anchor_date)
    return Cadence(s.weekday, nth=s.nth)


_P: sa.Table = Partnership.__table__  # type: ignore[attr-defined]
_S: sa.Table = PulseSchedule.__table__  # type: ignore[attr-defined]
# What planning reads of every active schedule (`_planned_rows`), as Core rows: for thousands of schedules,
# building ORM objects costs more than planning their rounds.
_PLANNED_SCHEDULES = (
    sa.select(_S.c.partnership_id, _S.c.cadence, _S.c.every_weeks, _S.c.nth, _S.c.weekday, _S.c.anchor_date,
              _S.c.local_time, _S.c.timezone, _S.c.version, _S.c.effective_from)
    .join_from(_S, _P, _P.c.id == _S.c.partnership_id)
    .where(_P.c.status == PartnershipStatus.ACTIVE, _S.c.paused.is_(False), _P.c.channel_archived_at.is_(None))
)


@dataclass
class PulseOverview:
    partnership: Partnership
    schedule: PulseSchedule | None
    next_due: datetime | None
    current: PulseRound | None
    last: tuple[PulseRound, PulseResults] | None


class PulseService(PartnershipFeature):
    def __init__(
        self, *, uow: UnitOfWork, slack: SlackGateway, clock: Clock, partnerships: PartnershipService,
        anonymity_key: bytes, min_per_side: int = 3, bot_user_id: str = "",
    ) -> None:
        super().__init__(uow=uow, slack=slack, clock=clock, partnerships=partnerships, bot_user_id=bot_user_id)
        self._key = anonymity_key
        self.min_per_side = min_per_side

    # -- who is asked: the one place (the lead swaps in PartnershipService.audience) --------------------------
    def audience(self, s: Session, partnership_id: int | None, audience: Audience) -> dict[str, list[str]]:
        """The people a pulse asks, per side (`ours`, `partner`), from the partnership's members."""
        sides = SIDES if audience == Audience.BOTH else (audience.value,)
        members = self.partnerships.audience(s, partnership_id or 0)  # people who left the channel are not asked
        return {side: [m.user_id for m in members if m.side == side and m.user_id != self.bot_user_id]
                for side in sides}

    def responder(self, round_key: str, user_id: str) -> str:
        """The keyed hash that recognises a person's response to one round (and only that round)."""
        return hmac.new(self._key, f"{round_key}\n{user_id}".encode(), hashlib.sha256).hexdigest()

    # -- queries --------------------------------------------------------------------------------------------------
    def overview(self, *, channel_id: str, actor: str) -> PulseOverview:
        p = self.partnerships.require_member(channel_id, actor, "see its pulse surveys").partnership
        now = self.clock.now()
        with self.uow(read_only=True) as s:
            sched = self._schedule(s, p.id)
            next_due = self._next_due(s, sched, now) if sched and not sched.paused else None
            current = self._current(s, p.id)
            last = s.exec(select(PulseRound).where(PulseRound.partnership_id == p.id,
                                                   PulseRound.status == PulseStatus.CLOSED)
                          .order_by(col(PulseRound.opened_at).desc())).first()
            results = (last, self.results(s, last)) if last is not None else None
        return PulseOverview(p, sched, next_due, current, results)

    # -- schedule (owners) ----------------------------------------------------------------------------------------
    def prepare_setup(self, *, channel_id: str, actor: str) -> tuple[Partnership, PulseSchedule | None]:
        p = self.partnerships.require_owner(channel_id, actor, "set up its pulse survey").partnership
        with self.uow(read_only=True) as s:
            return p, self._schedule(s, p.id)

    def save_schedule(self, *, partnership_id: int, actor: str, inp: PulseScheduleInput) -> Outcome:
        p = self.partnerships.require_owner_by_id(partnership_id, actor, "set up its pulse survey").partnership
        now = self.clock.now()
        with self.uow() as s:
            sched = self._schedule(s, p.id)
            created = sched is None
            if sched is None:
                sched = PulseSchedule(partnership_id=p.id, cadence=inp.cadence, weekday=inp.weekday,
                                      anchor_date=local_date(now, inp.timezone), local_time=inp.local_time,
                                      timezone=inp.timezone, updated_by=actor)
            timing = (inp.cadence, inp.every_weeks, inp.nth, inp.weekday)
            if created or timing != (sched.cadence, sched.every_weeks, sched.nth, sched.weekday) \
                    or inp.timezone != sched.timezone:
                sched.anchor_date = local_date(now, inp.timezone)  # every N weeks counts from now on
            sched.cadence, sched.every_weeks, sched.nth, sched.weekday = timing
            sched.local_time, sched.timezone, sched.open_days = inp.local_time, inp.timezone, inp.open_days
            sched.anonymous, sched.audience, sched.questions = inp.anonymous, inp.audience, list(inp.questions)
            self._changed(s, sched, actor, now)
            self.partnerships.audit(s, p, actor, "pulse_scheduled", cadence=pblocks.cadence_line(sched))
            next_due = self._next_due(s, sched, now) if not sched.paused else None
            line, paused = pblocks.cadence_line(sched), sched.paused
        nxt = local_time(next_due, inp.timezone) if next_due else "none"
        if paused:
            nxt = "none while paused (`/partner pulse resume` restarts it)"
        verb = "set up" if created else "changed"
        self._announce(p, f":bar_chart: {mention(actor)} {verb} the partnership pulse: {line}. Next round: {nxt}.")
        return Outcome(f":white_check_mark: Partnership pulse for *{escape(p.name)}*: {line}, "
                       f"{len(inp.questions)} question(s). Next round: {nxt}.", partnership=p)

    def pause(self, *, channel_id: str, actor: str) -> Outcome:
        p = self.partnerships.require_owner(channel_id, actor, "pause its pulse survey").partnership
        now = self.clock.now()
        with self.uow() as s:
            sched = self._require_schedule(s, p)
            if sched.paused:
                return Outcome(f"The pulse of *{escape(p.name)}* is already paused.", partnership=p)
            sched.paused = True
            self._changed(s, sched, actor, now)
            self.partnerships.audit(s, p, actor, "pulse_paused")
        self._announce(p, f":double_vertical_bar: {mention(actor)} paused the partnership pulse.")
        return Outcome(f":double_vertical_bar: Paused the pulse of *{escape(p.name)}*. `/partner pulse resume` "
                       "restarts it.", partnership=p)

    def resume(self, *, channel_id: str, actor: str) -> Outcome:
        p = self.partnerships.require_owner(channel_id, actor, "resume its pulse survey").partnership
        now = self.clock.now()
        with self.uow() as s:
            sched = self._require_schedule(s, p)
            if not sched.paused:
                return Outcome(f"The pulse of *{escape(p.name)}* is not paused.", partnership=p)
            sched.paused = False
            self._changed(s, sched, actor, now)
            self.partnerships.audit(s, p, actor, "pulse_resumed")
            next_due = self._next_due(s, sched, now)
        nxt = local_time(next_due, sched.timezone) if next_due else "none"
        self._announce(p, f":arrow_forward: {mention(actor)} resumed the partnership pulse. Next round: {nxt}.")
        return Outcome(f":arrow_forward: Resumed the pulse of *{escape(p.name)}*. Next round: {nxt}.", partnership=p)

    def run_now(self, *, channel_id: str, actor: str, request_key: str) -> Outcome:
        """Open a round now (owners). One at a time: refused while a round is open or one is being posted."""
        p = self.partnerships.require_owner(channel_id, actor, "run a pulse round").partnership
        now = self.clock.now()
        with self.uow() as s:
            s.get(Partnership, p.id, with_for_update=True)  # concurrent requests check one after the other
            sched = self._schedule(s, p.id)
            if sched is not None and sched.paused:
                raise Invalid(f"The pulse of *{escape(p.name)}* is paused. Restart it with `/partner pulse resume` "
                              "first.")
            starting = s.exec(select(Occurrence.key).where(
                col(Occurrence.key).startswith(manual_key(p.id or 0, "")), Occurrence.kind == PULSE_OPEN,
                col(Occurrence.state).in_([OccurrenceState.PENDING.value, OccurrenceState.CLAIMED.value]))).first()
            current = self._current(s, p.id)
            if current is not None:
                raise Invalid(f"A pulse round of *{escape(p.name)}* is open until "
                              f"{local_time(current.closes_at, current.timezone)}: answer that one, or start "
                              "another after it closes.")
            if starting is not None and starting != manual_key(p.id or 0, request_key):
                raise Invalid(f"A pulse round of *{escape(p.name)}* was just started and is being posted.")
            zone = sched.timezone if sched else p.timezone
            insert_new(s, [{
                "key": manual_key(p.id or 0, request_key), "kind": PULSE_OPEN, "subject_id": p.id, "due_at": now,
                "not_after": now + MANUAL_GRACE,
                "payload": {"manual": True, "local_date": local_date(now, zone).isoformat(), "started_by": actor},
            }], now)
            self.partnerships.audit(s, p, actor, "pulse_started")
        self.wake()
        return Outcome(f":rocket: Starting a partnership pulse round for *{escape(p.name)}* now.", partnership=p)

    # -- answering ------------------------------------------------------------------------------------------------
    def survey_form(self, *, round_key: str, user_id: str) -> dict[str, Any]:
        """The survey form for this person, with their earlier answers to this round (to change)."""
        with self.uow(read_only=True) as s:
            r, p, _side = self._open_round(s, round_key, user_id)
            mine = self._response(s, r, user_id)
            return pblocks.survey_modal(p.name, r, ratings=mine.ratings if mine else [],
                                        answers=mine.answers if mine else [])

    def check_answer(self, *, round_key: str, user_id: str, ratings: Sequence[int | None],
                     answers: Sequence[str]) -> None:
        """Raise what a submission would be refused for (the form shows it under its inputs)."""
        with self.uow(read_only=True) as s:
            r, _p, _side = self._open_round(s, round_key, user_id)
        _clean(r.questions, ratings, answers)

    def submit_answer(self, *, round_key: str, user_id: str, ratings: Sequence[int | None],
                      answers: Sequence[str]) -> Outcome:
        """Save a person's answers; answering again replaces their earlier answers to this round."""
        for attempt in range(2):
            try:
                with self.uow() as s:
                    r, p, side = self._open_round(s, round_key, user_id, lock=True)
                    clean_ratings, clean_answers = _clean(r.questions, ratings, answers)
                    mine = self._response(s, r, user_id)
                    replaced = mine is not None
                    if mine is None:
                        assert r.id is not None
                        mine = PulseResponse(round_id=r.id, responder=self.responder(r.key, user_id), side=side)
                    mine.side = side
                    mine.user_id = None if r.anonymous else user_id
                    mine.ratings, mine.answers = clean_ratings, clean_answers
                    s.add(mine)
                    closes = local_time(r.closes_at, r.timezone)
                    how = "anonymously " if r.anonymous else ""
                break
            except IntegrityError:  # two first submissions at once: the second one replaces
                if attempt:
                    raise
        if replaced:
            return Outcome(f":white_check_mark: Your answers are replaced ({how}saved). The results come when the "
                           f"round closes, {closes}.", partnership=p)
        return Outcome(f":white_check_mark: Thanks: your answers are {how}saved. Answering again replaces them "
                       f"until the round closes, {closes}.", partnership=p)

    # -- scheduled work -------------------------------------------------------------------------------------------
    def plan(self, now: datetime | None = None) -> int:
        """Plan every active pulse's rounds for the next hours (idempotent; any replica may run it)."""
        now = now or self.clock.now()
        with self.uow() as s:
            rows: list[Row] = []
            for sched in planning_rows(s.connection(), _PLANNED_SCHEDULES):
                rows += self._planned_rows(sched, now)
            upsert_planned(s, rows, now, skip_planned=True)  # nearly every row is planned already
        return len(rows)

    def run_open(self, occ: Occurrence, ctx: RunContext) -> Completion:
        manual = bool(occ.payload.get("manual"))
        with self.uow(read_only=True) as s:
            p = s.get(Partnership, occ.subject_id)
            if p is None or not p.channel_id:
                return Completion.obsolete("the partnership no longer exists")
            sched = self._schedule(s, p.id)
            current = self._current(s, p.id)
            unwanted = (
                "the partnership is closed" if p.status != PartnershipStatus.ACTIVE
                else "the channel is archived" if p.channel_archived_at is not None
                else "the pulse is paused" if sched is not None and sched.paused
                else "a pulse round is still open" if current is not None and current.key != occ.key
                else None if manual
                else "the pulse is not scheduled any more" if sched is None
                else "the schedule changed after this round was planned" if occ.revision != sched.version
                else None
            )
            if unwanted is not None and (done := ctx.unless_posted(unwanted)) is not None:
                return done
            zone = sched.timezone if sched else p.timezone
            audience = sched.audience if sched else Audience.BOTH
            asked = self.audience(s, p.id, audience)
            open_for = timedelta(days=sched.open_days if sched else DEFAULT_OPEN_DAYS)
            day = date.fromisoformat(occ.payload["local_date"]) if occ.payload.get("local_date") else \
                local_date(ctx.now, zone)
            r = PulseRound(
                key=occ.key, partnership_id=p.id, local_date=day, timezone=zone, scheduled_for=occ.due_at,
                opened_at=ctx.now, closes_at=ctx.now + open_for, manual=manual,
                started_by=occ.payload.get("started_by"),
                questions=[dict(q) for q in (sched.questions if sched else DEFAULT_PULSE_QUESTIONS)],
                anonymous=sched.anonymous if sched else True, audience=audience, asked=asked,
                channel_id=p.channel_id,
            )
            name = p.name
        count = sum(len(v) for v in asked.values())
        channel, ts = ctx.post(r.channel_id, text=pblocks.survey_text(name),
                               blocks=pblocks.survey_blocks(name, r, asked=count),
                               extra={"opened_at": r.opened_at.isoformat(), "closes_at": r.closes_at.isoformat()})
        r.channel_id, r.message_ts = channel, ts
        if ctx.adopted is not None:  # posted by an earlier attempt: keep the times that message shows
            shown = (ctx.adopted.get("metadata") or {}).get("event_payload") or {}
            if shown.get("opened_at") and shown.get("closes_at"):
                r.opened_at = datetime.fromisoformat(shown["opened_at"])
                r.closes_at = datetime.fromisoformat(shown["closes_at"])

        def open_round(s: Session) -> None:  # inside the fenced completion: at most once per key
            s.add(r)
            s.flush()
            insert_new(s, self._round_rows(r), ctx.now)

        return Completion.done(channel, ts, apply=open_round)

    def run_reminder(self, occ: Occurrence, ctx: RunContext) -> Completion:
        """One private reminder. Whether it is sent says nothing in the database about who answered: every
        reminder not needed (answered, away, or closed) is recorded alike."""
        user = str(occ.payload["user"])
        with self.uow(read_only=True) as s:
            r = s.get(PulseRound, occ.subject_id)
            p = s.get(Partnership, r.partnership_id) if r is not None else None
            if r is None or p is None or r.status == PulseStatus.CLOSED or p.status != PartnershipStatus.ACTIVE \
                    or not any(user in people for people in self.audience(s, p.id, r.audience).values()) \
                    or self._response(s, r, user) is not None \
                    or s.exec(select(Away).where(Away.user_id == user,
                                                 col(Away.until) >= local_date(ctx.now, r.timezone))).first():
                return Completion.obsolete("no reminder needed")
            name = p.name
        channel, ts = ctx.post(user, text=pblocks.reminder_text_for(name), blocks=pblocks.reminder_blocks(name, r))
        return Completion.done(channel, ts)

    def run_close(self, occ: Occurrence, ctx: RunContext) -> Completion:
        with self.uow() as s:
            r = s.get(PulseRound, occ.subject_id, with_for_update=True)  # waits for an answer being saved
            if r is None:
                return Completion.obsolete("the round no longer exists")
            if r.status == PulseStatus.OPEN:  # from here on no answer is taken; closing twice is harmless
                r.status, r.closed_at = PulseStatus.CLOSED, ctx.now
                s.add(r)
            p = s.get(Partnership, r.partnership_id)
            if p is None or p.status != PartnershipStatus.ACTIVE:
                return Completion.obsolete("the partnership is closed")
            res = self.results(s, r)
            name, round_id = p.name, r.id
        text, blocks = pblocks.results_text(name, res), pblocks.results_blocks(name, r, res)

        def thread(s: Session) -> None:
            if any(a for _, a in res.open_answers):
                insert_new(s, [{"key": f"{PULSE_ANSWERS}:{round_id}", "kind": PULSE_ANSWERS, "subject_id": round_id,
                                "due_at": ctx.now}], ctx.now)

        if r.message_ts:
            try:
                ctx.slack.update(r.channel_id, r.message_ts, text=text, blocks=blocks)
                return Completion.done(r.channel_id, r.message_ts, apply=thread)
            except SlackError as exc:
                if exc.code not in ("message_not_found", "cant_update_message", "edit_window_closed"):
                    raise
        channel, ts = ctx.post(r.channel_id, text=text, blocks=blocks)  # the survey message is gone: post anew

        def repost(s: Session) -> None:
            row = s.get(PulseRound, round_id)
            if row is not None:
                row.message_ts = ts
                s.add(row)
            thread(s)

        return Completion.done(channel, ts, apply=repost)

    def run_answers(self, occ: Occurrence, ctx: RunContext) -> Completion:
        with self.uow(read_only=True) as s:
            r = s.get(PulseRound, occ.subject_id)
            if r is None or not r.message_ts:
                return Completion.obsolete("the round no longer exists")
            p = s.get(Partnership, r.partnership_id)
            res = self.results(s, r)
            name = p.name if p else ""
        if not any(a for _, a in res.open_answers):
            return Completion.obsolete("no open answers")
        channel, ts = ctx.post(r.channel_id, text=pblocks.open_answers_text(name),
                               blocks=pblocks.open_answers_blocks(res.open_answers), thread_ts=r.message_ts)
        return Completion.done(channel, ts)

    def on_failure(self, s: Session, occ: Occurrence, error: str) -> None:
        """Failed for good: a channel archived or deleted stops scheduling (like check-ins); otherwise the owners
        are told what failed and what to do, at most once a day per kind of failure."""
        p = self.partnership_of(s, occ)
        if p is None or p.status != PartnershipStatus.ACTIVE:
            return
        now = self.clock.now()
        if error in CHANNEL_GONE:
            self.partnerships.mark_channel(s, p, gone=True, error=error)
            return
        hint = advice(error)
        if error == "not_in_channel":
            hint = "Invite Partnerbot back to the channel (`/invite @Partnerbot`), then run `/partner pulse now`."
        text = failure_notice(WHAT_FAILED.get(occ.kind, "run a scheduled task"), p.name, p.channel_id, error, hint)
        assert p.id is not None
        plan_notices(s, subject_id=p.id, people=self.partnerships.owners(s, p.id), text=text, now=now,
                     key=f"notice:{p.id}:{occ.kind}:{error}:{local_date(now, p.timezone).isoformat()}")

    def partnership_of(self, s: Session, occ: Occurrence) -> Partnership | None:
        pid: int | None = occ.subject_id
        if occ.kind != PULSE_OPEN:
            r = s.get(PulseRound, occ.subject_id)
            pid = r.partnership_id if r is not None else None
        return s.get(Partnership, pid) if pid is not None else None

    # -- results --------------------------------------------------------------------------------------------------
    def results(self, s: Session, r: PulseRound) -> PulseResults:
        responses = list(s.exec(select(PulseResponse).where(PulseResponse.round_id == r.id)).all())
        previous = self._previous_averages(s, r)
        questions, open_answers = [], []
        asked = r.asked or {}
        sides = [side for side in SIDES if side in asked] or list(SIDES)
        for i, q in enumerate(r.questions):
            if q.get("kind") == QuestionKind.OPEN:
                # Sorted, so the order says nothing about who answered when.
                answers = sorted(a.answers[i].strip() for a in responses if i < len(a.answers) and a.answers[i].strip())
                open_answers.append((q["text"], answers))
                continue
            pairs = [(a.side, a.ratings[i] if i < len(a.ratings) else None) for a in responses]
            questions.append(QuestionResult(q["text"], summarize(pairs, sides, min_per_side=self.min_per_side,
                                                                 previous=previous.get(q["text"]))))
        answered = {side: sum(1 for a in responses if a.side == side) for side in asked}
        participation = {side: (answered[side], len(people)) for side, people in asked.items()}
        answered_by = [] if r.anonymous else sorted(a.user_id for a in responses if a.user_id)
        return PulseResults(questions, participation, open_answers, answered_by, self.min_per_side)

    def _previous_averages(self, s: Session, r: PulseRound) -> dict[str, float]:
        """The overall average per rating question (by its text) of the round closed before this one."""
        prev = s.exec(select(PulseRound).where(PulseRound.partnership_id == r.partnership_id,
                                               PulseRound.status == PulseStatus.CLOSED,
                                               col(PulseRound.opened_at) < r.opened_at)
                      .order_by(col(PulseRound.opened_at).desc())).first()
        if prev is None:
            return {}
        responses = list(s.exec(select(PulseResponse).where(PulseResponse.round_id == prev.id)).all())
        out = {}
        for i, q in enumerate(prev.questions):
            values = [a.ratings[i] for a in responses if i < len(a.ratings) and a.ratings[i] is not None]
            if q.get("kind") != QuestionKind.OPEN and values:
                out[q["text"]] = sum(v for v in values if v is not None) / len(values)
        return out

    # -- helpers --------------------------------------------------------------------------------------------------
    def _schedule(self, s: Session, partnership_id: int | None) -> PulseSchedule | None:
        return s.exec(select(PulseSchedule).where(PulseSchedule.partnership_id == partnership_id)).first()

    def _require_schedule(self, s: Session, p: Partnership) -> PulseSchedule:
        sched = self._schedule(s, p.id)
        if sched is None:
            raise Invalid(f"*{escape(p.name)}* has no pulse survey yet. Set one up with `/partner pulse setup`.")
        return sched

    def _current(self, s: Session, partnership_id: int | None) -> PulseRound | None:
        return s.exec(select(PulseRound).where(PulseRound.partnership_id == partnership_id,
                                               PulseRound.status == PulseStatus.OPEN)
                      .order_by(col(PulseRound.closes_at).desc())).first()

    def _response(self, s: Session, r: PulseRound, user_id: str) -> PulseResponse | None:
        return s.exec(select(PulseResponse).where(PulseResponse.round_id == r.id,
                                                  PulseResponse.responder == self.responder(r.key, user_id))).first()

    def _changed(self, s: Session, sched: PulseSchedule, actor: str, now: datetime) -> None:
        """A change: new version, nothing before now is planned, future rounds re-planned."""
        sched.version = (sched.version or 0) + 1
        sched.effective_from = now
        sched.updated_by, sched.updated_at = actor, now
        s.add(sched)
        s.flush()
        mark_obsolete(s, kinds=[PULSE_OPEN], subject_id=sched.partnership_id, now=now,
                      note="the pulse schedule changed", due_after=now)
        if not sched.paused:
            upsert_planned(s, self._planned_rows(sched, now), now)

    # `sched`: a schedule, or a row of the columns planning reads (`_PLANNED_SCHEDULES`).
    def _slots(self, sched: PulseSchedule | sa.Row[Any], start: datetime, end: datetime) -> list[Slot]:
        return list(cadence_slots_between(cadence_of(sched), parse_local_time(sched.local_time), sched.timezone,
                                          start, end))

    def _planned_rows(self, sched: PulseSchedule | sa.Row[Any], now: datetime) -> list[Row]:
        grace = KINDS[PULSE_OPEN].policy.grace
        assert grace is not None
        return [self._open_row(sched, slot)
                for slot in self._slots(sched, max(now - grace, sched.effective_from), now + PLAN_HORIZON)]

    def _open_row(self, sched: PulseSchedule | sa.Row[Any], slot: Slot) -> Row:
        return {
            "key": open_key(sched.partnership_id, slot.local_date), "kind": PULSE_OPEN,
            "subject_id": sched.partnership_id, "due_at": slot.due_at, "revision": sched.version,
            "not_after": KINDS[PULSE_OPEN].policy.not_after(slot.due_at,
                                                            end_of_local_day(slot.local_date, sched.timezone)),
            "payload": {"local_date": slot.local_date.isoformat()},
        }

    def _next_due(self, s: Session, sched: PulseSchedule, now: datetime) -> datetime | None:
        upcoming = self._slots(sched, max(now, sched.effective_from), now + LOOKAHEAD)
        keys = [open_key(sched.partnership_id, slot.local_date) for slot in upcoming]
        done = set(s.exec(select(Occurrence.key).where(
            col(Occurrence.key).in_(keys),
            col(Occurrence.state).in_([OccurrenceState.SKIPPED.value, OccurrenceState.DONE.value,
                                       OccurrenceState.CLAIMED.value]))).all())
        return next((slot.due_at for slot, key in zip(upcoming, keys, strict=True) if key not in done), None)

    def _round_rows(self, r: PulseRound) -> list[Row]:
        rows: list[Row] = [{"key": f"{PULSE_CLOSE}:{r.id}", "kind": PULSE_CLOSE, "subject_id": r.id,
                            "due_at": r.closes_at}]
        remind_at = max(r.opened_at + (r.closes_at - r.opened_at) / 2, r.closes_at - REMIND_BEFORE_CLOSE)
        for people in (r.asked or {}).values():
            for user in people:
                rows.append({"key": f"{PULSE_REMIND}:{r.id}:{user}", "kind": PULSE_REMIND, "subject_id": r.id,
                             "due_at": remind_at, "not_after": r.closes_at, "payload": {"user": user}})
        return rows

    def _open_round(
        self, s: Session, round_key: str, user_id: str, *, lock: bool = False
    ) -> tuple[PulseRound, Partnership, str]:
        """The open round of this key and the side `user_id` answers for, if they are asked. `lock`: hold the
        round's row until the caller's unit of work ends, so the close cannot count in between."""
        query = select(PulseRound).where(PulseRound.key == round_key)
        r = s.exec(query.with_for_update() if lock else query).first()
        p = s.get(Partnership, r.partnership_id) if r else None
        if r is None or p is None:
            raise NotFound("This pulse survey no longer exists.")
        asked = {u: side for side, people in (r.asked or {}).items() for u in people}
        # Members only: someone taken out of the partnership since the round opened no longer answers.
        self.partnerships.authorize(s, p, user_id, "answer its pulse survey", open_only=False)
        if r.status == PulseStatus.CLOSED or p.status != PartnershipStatus.ACTIVE:
            closed = local_time(r.closed_at or r.closes_at, r.timezone)
            raise Invalid(f"This pulse round closed {closed}; answers are no longer taken. `/partner pulse` shows "
                          "its results and when the next round is.")
        side = asked.get(user_id)
        if side is None:  # joined since the round opened: asked if their side is
            now_asked = self.audience(s, p.id, r.audience)
            side = next((sd for sd, people in now_asked.items() if user_id in people), None)
        if side is None:
            raise Invalid(f"This pulse round asks {pblocks.AUDIENCE_NAMES[r.audience]}, so it has no questions for "
                          "you. Its results are shown in the channel when it closes.")
        return r, p, side

    def _announce(self, p: Partnership, text: str) -> None:
        if not p.channel_id:
            return
        try:
            self.slack.post(p.channel_id, text=text, key=f"announce:{p.id}:{uuid.uuid4().hex}")
        except SlackError as exc:
            log.warning("could not announce a pulse change in %s: %s", p.channel_id, exc.code)


def _clean(questions: Sequence[dict[str, str]], ratings: Sequence[int | None],
           answers: Sequence[str]) -> tuple[list[int | None], list[str]]:
    """Answers lined up with the questions: a rating from 1 to 5 (or None) for rated ones, text for open ones."""
    out_r: list[int | None] = []
    out_a: list[str] = []
    errors: dict[str, str] = {}
    for i, q in enumerate(questions):
        rating = ratings[i] if i < len(ratings) else None
        text = (answers[i] if i < len(answers) else "").strip()
        if q.get("kind") == QuestionKind.OPEN:
            if len(text) > OPEN_ANSWER_MAX:
                errors[pblocks.rating_field(i)] = (f"This answer is {len(text)} characters long; the limit is "
                                                   f"{OPEN_ANSWER_MAX}.")
            out_r.append(None)
            out_a.append(text)
        else:
            if rating is not None and not RATING_MIN <= rating <= RATING_MAX:
                errors[pblocks.rating_field(i)] = f"Rate from {RATING_MIN} to {RATING_MAX}."
            out_r.append(rating)
            out_a.append("")
    if errors:
        raise Invalid(" ".join(errors.values()), errors)
    if all(x is None for x in out_r) and not any(out_a):
        first = pblocks.rating_field(0)
        raise Invalid("Answer at least one question.", {first: "Answer at least one question."})
    return out_r, out_a
