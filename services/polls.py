"""Feedback polls: a question in a partnership's channel, answered with one click, closed on the engine.

Creating a poll plans its work as occurrences: `poll_post` (the message, exactly once), `poll_close` at
`closes_at` (never skipped; late after a restart, and then it says so), and a `poll_remind` at the reminder
time, which plans one `poll_remind` per person of the audience as it is then. Each vote re-arms the poll's one
`poll_refresh` occurrence, due at least a second after the last update, so a vote storm becomes about one
chat.update a second and the last state always shows.

Anonymity: a vote row is keyed by HMAC(key, poll, person) (`voter`); the key comes from the settings and
is never stored. An anonymous poll's rows hold no user id, its logs and notes name nobody, and its live
tally appears only from ANONYMOUS_TALLY_MIN respondents on.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from adapters.clock import Clock
from adapters.slack import SlackError, SlackGateway
from blocks import polls as pblocks
from blocks.text import escape, mention
from models.db import UnitOfWork
from models.partnership import Member, Partnership, PartnershipStatus, Side
from models.poll import (
    ANONYMOUS_TALLY_MIN,
    POLL_ANSWER_MAX,
    TEXT_OPTION,
    Poll,
    PollAudience,
    PollKind,
    PollResults,
    PollStatus,
    PollVote,
    ResultsMode,
    labels_of,
    tally,
    value_index,
)
from models.scheduling import Occurrence, OccurrenceState
from services.checkins import CHANNEL_GONE, away_on
from services.errors import Forbidden, Invalid, NotFound
from services.export import Cell, csv_bytes
from services.inputs import PollSpec
from services.partnerships import Access, Outcome, PartnershipFeature, PartnershipService, Standing, slugify
from services.recurrence import local_date
from services.scheduling import (
    POLL_CLOSE,
    POLL_POST,
    POLL_REFRESH,
    POLL_REMIND,
    Completion,
    RunContext,
    insert_new,
    mark_obsolete,
    plan_notices,
    refresh_too_soon,
    request_refresh,
    request_run,
    run_again,
)

log = logging.getLogger(__name__)

LATE_AFTER = timedelta(minutes=5)  # a close this much past its time says it closed late
NO_REMINDER_WITHIN = timedelta(hours=1)  # a poll closing sooner gets no reminder
REMIND_AFTER_POST = timedelta(seconds=30)  # a reminder due before the poll is posted looks again this much later
LIST_CLOSED = 5  # `/partner poll list` shows this many closed polls
# chat.update errors after which the poll's message cannot show its results any more.
MESSAGE_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed", "is_archived",
                          "channel_not_found", "not_in_channel"})
WHAT_FAILED = {
    POLL_POST: "post your poll",
    POLL_CLOSE: "close your poll and show its results",
}


# A vote runs on Core statements built once: through the ORM (entities, the identity map, autoflush) a vote cost
# several times the database's own work, and a storm's votes compete with its acks for the interpreter.
_POLL: sa.Table = Poll.__table__  # type: ignore[attr-defined]
_VOTE: sa.Table = PollVote.__table__  # type: ignore[attr-defined]
_MEMBER: sa.Table = Member.__table__  # type: ignore[attr-defined]
_POLL_FIELDS = tuple(c.name for c in _POLL.c)
# The poll with the voter's member row (what the audience check needs), by poll_id and user_id.
_POLL_READ = (
    sa.select(_POLL, _MEMBER.c.side.label("member_side"), _MEMBER.c.left_at.label("member_left_at"))
    .select_from(_POLL.outerjoin(_MEMBER, sa.and_(_MEMBER.c.partnership_id == _POLL.c.partnership_id,
                                                  _MEMBER.c.user_id == sa.bindparam("user_id"))))
    .where(_POLL.c.id == sa.bindparam("poll_id"))
)
_POLL_LOCKED = _POLL_READ.with_for_update(of=_POLL)  # PostgreSQL: FOR UPDATE OF poll (SQLite: BEGIN IMMEDIATE)
# How many people answered the poll, with the rows of one of them (none: one row of NULLs), by poll_id and voter.
_COUNTED = (sa.select(sa.func.count(sa.distinct(_VOTE.c.voter)).label("respondents"))
            .where(_VOTE.c.poll_id == sa.bindparam("poll_id")).subquery("counted"))
_MINE = _VOTE.alias("mine")
_MINE_AND_COUNT = (
    sa.select(_COUNTED.c.respondents, _MINE.c.id, _MINE.c.option, _MINE.c.text)
    .select_from(_COUNTED.outerjoin(_MINE, sa.and_(_MINE.c.poll_id == sa.bindparam("poll_id"),
                                                   _MINE.c.voter == sa.bindparam("voter"))))
    .order_by(_MINE.c.id)
)
_INSERT_VOTE = _VOTE.insert()
_DELETE_MINE = _VOTE.delete().where(_VOTE.c.poll_id == sa.bindparam("poll_id"), _VOTE.c.voter == sa.bindparam("voter"))
_DELETE_VOTE = _VOTE.delete().where(_VOTE.c.id == sa.bindparam("vote_id"))


@dataclass
class Recorded:
    """What a person's click or answer changed, for their private confirmation."""

    poll: Poll
    picks: list[int]  # what is recorded for them now (option indexes, or their score)
    changed: bool
    respondents: int
    answer: str | None = None


@dataclass
class Listed:
    poll: Poll
    respondents: int
    link: str | None


class PollService(PartnershipFeature):
    def __init__(
        self, *, uow: UnitOfWork, slack: SlackGateway, clock: Clock, partnerships: PartnershipService,
        anonymity_key: bytes, min_per_side: int = 3, bot_user_id: str = "",
    ) -> None:
        super().__init__(uow=uow, slack=slack, clock=clock, partnerships=partnerships, bot_user_id=bot_user_id)
        self._key = anonymity_key
        self.min_per_side = min_per_side
        # bot.py points it at the ticker: wake() runs a dispatch tick now, wake(at) at `at` (unless one runs sooner).
        self.wake: Callable[..., None] = lambda at=None: None

    # -- who ---------------------------------------------------------------------------------------------------
    def voter(self, poll_id: int, user_id: str) -> str:
        """The keyed hash that stands for this person in this poll's votes (the key is never stored)."""
        return hmac.new(self._key, f"poll:{poll_id}:{user_id}".encode(), hashlib.sha256).hexdigest()

    def audience(
        self, s: Session, partnership_id: int, audience: PollAudience, chosen: Sequence[str] = (), *,
        user_id: str | None = None, standing: Standing | None = None,
    ) -> dict[str, Side]:
        """Who may answer a poll, with their side. The one place the audience is resolved (built on the
        partnership's recorded members). `user_id`: only whether that one person may (one row read, so that a
        vote's check costs the same in a poll of 5 people or of 5,000); `standing`: that person's member row as
        the caller already read it (a vote reads it with the poll's row lock), so nothing is read here."""
        # People who left the channel are in no new audience (also when chosen by name).
        if standing is not None:
            assert user_id is not None
            sides = {user_id: standing.side} if standing.side is not None and not standing.left else {}
        else:
            sides = {m.user_id: m.side for m in self.partnerships.audience(s, partnership_id, user_id=user_id)}
        sides.pop(self.bot_user_id, None)
        if audience == PollAudience.ALL:
            return sides
        if audience == PollAudience.CHOSEN:
            if standing is not None:
                left = {user_id} if standing.left else set()
            else:
                left = self.partnerships.left_channel(s, partnership_id, user_id=user_id)
            return {u: sides.get(u, Side.OURS) for u in chosen
                    if u != self.bot_user_id and u not in left and user_id in (None, u)}
        want = Side.OURS if audience == PollAudience.OURS else Side.PARTNER
        return {u: side for u, side in sides.items() if side == want}

    def _audience_of(
        self, s: Session, poll: Poll, user_id: str | None = None, standing: Standing | None = None,
    ) -> dict[str, Side]:
        return self.audience(s, poll.partnership_id, poll.audience, poll.chosen, user_id=user_id, standing=standing)

    # -- creating ----------------------------------------------------------------------------------------------
    def prepare(self, *, channel_id: str, actor: str) -> Partnership:
        """The partnership of this channel, when `actor` may start a poll in it (any member)."""
        p = self.partnerships.require_member(channel_id, actor, "start a poll").partnership
        if p.channel_archived_at is not None:
            raise Invalid(f"The channel of *{escape(p.name)}* is archived; unarchive it to start a poll.")
        return p

    def _refuse_unrecorded(self, s: Session, partnership_id: int, spec: PollSpec) -> None:
        """Chosen people must be recorded in the partnership: their side is what the per-side results count."""
        if spec.audience != PollAudience.CHOSEN:
            return
        recorded = set(s.exec(select(Member.user_id).where(Member.partnership_id == partnership_id)).all())
        outside = [u for u in spec.chosen if u not in recorded and u != self.bot_user_id]
        if outside:
            p = s.get(Partnership, partnership_id)
            name = escape(p.name) if p is not None else "the partnership"
            raise Invalid(
                f"{', '.join(mention(u) for u in outside)} {'is' if len(outside) == 1 else 'are'} not in *{name}*. "
                "Choose people recorded in the partnership (either side); an owner of the partnership adds them "
                "with `/partner add @person`.",
                {"chosen": "Only people recorded in the partnership (either side) can be chosen; add others with "
                           "`/partner add @person`."})

    def check_audience(self, *, partnership_id: int, spec: PollSpec) -> None:
        """Raise when a chosen person is not in the partnership (under `chosen`) or nobody could answer (under
        `audience`)."""
        with self.uow(read_only=True) as s:
            self._refuse_unrecorded(s, partnership_id, spec)
            if not self.audience(s, partnership_id, spec.audience, spec.chosen):
                raise Invalid("Nobody could answer this poll: that group has no one in the partnership yet. "
                              "Pick another group, or choose people.",
                              {"audience": "Nobody is in that group yet; pick another or choose people."})

    def create(self, *, partnership_id: int, actor: str, spec: PollSpec, creation_key: str) -> Outcome:
        now = self.clock.now()
        with self.uow() as s:
            p = s.get(Partnership, partnership_id, with_for_update=True)  # numbers are handed out one at a time
            if p is None:
                raise NotFound("That partnership no longer exists.")
            self.partnerships.authorize(s, p, actor, "start a poll")
            existing = s.exec(select(Poll).where(Poll.creation_key == creation_key)).first()
            if existing is not None:  # the same request, repeated
                return Outcome(f":bar_chart: Poll #{existing.number} is posted in the channel.", partnership=p)
            if not p.channel_id or p.channel_archived_at is not None:
                raise Invalid(f"The channel of *{escape(p.name)}* is archived; unarchive it to start a poll.")
            self._refuse_unrecorded(s, partnership_id, spec)
            people = self.audience(s, partnership_id, spec.audience, spec.chosen)
            if not people:
                raise Invalid("Nobody could answer this poll: that group has no one in the partnership yet. "
                              "Pick another group, or choose people.",
                              {"audience": "Nobody is in that group yet; pick another or choose people."})
            number = (s.exec(select(func.max(Poll.number)).where(Poll.partnership_id == partnership_id)).one()
                      or 0) + 1
            poll = Poll(
                partnership_id=partnership_id, number=number, creation_key=creation_key[:128],
                question=spec.question, kind=spec.kind, options=list(spec.options), max_picks=spec.max_picks,
                anonymous=spec.anonymous, results=spec.results, audience=spec.audience, chosen=list(spec.chosen),
                timezone=p.timezone, created_by=actor, created_at=now, closes_at=spec.closes_at,
                remind_at=remind_time(spec.remind, now, spec.closes_at), channel_id=p.channel_id,
            )
            s.add(poll)
            s.flush()
            assert poll.id is not None
            rows = [
                {"key": f"{POLL_POST}:{poll.id}", "kind": POLL_POST, "subject_id": poll.id, "due_at": now},
                {"key": f"{POLL_CLOSE}:{poll.id}", "kind": POLL_CLOSE, "subject_id": poll.id,
                 "due_at": poll.closes_at},
            ]
            if poll.remind_at is not None:  # for the audience as it is then: people who joined since too
                rows.append({"key": f"{POLL_REMIND}:{poll.id}", "kind": POLL_REMIND, "subject_id": poll.id,
                             "due_at": poll.remind_at, "not_after": poll.closes_at})
            insert_new(s, rows, now)
            self.partnerships.audit(s, p, actor, "poll_created", number=number, kind=spec.kind.value)
        self.wake()
        return Outcome(f":bar_chart: Poll #{number} is being posted in the channel; it closes "
                       f"{pblocks.when(poll.closes_at)}.", partnership=p)

    # -- voting ------------------------------------------------------------------------------------------------
    def vote(self, *, poll_id: int, user_id: str, option: int) -> Recorded:
        """One click: a single-choice or scale vote (another option changes it, the same one changes nothing),
        or a multiple-choice toggle (a pick beyond the limit is refused)."""
        return self._record(poll_id, user_id, option=option)

    def check_answer(self, *, poll_id: int, user_id: str, text: str) -> str:
        cleaned = (text or "").strip()
        if not cleaned:
            raise Invalid("Write an answer.", {"answer": "Write an answer."})
        if len(cleaned) > POLL_ANSWER_MAX:
            raise Invalid(f"Your answer is {len(cleaned)} characters long; the limit is {POLL_ANSWER_MAX}.",
                          {"answer": f"{len(cleaned)} characters; the limit is {POLL_ANSWER_MAX}."})
        with self.uow(read_only=True) as s:
            self._open_poll(s, poll_id, user_id)
        return cleaned

    def answer(self, *, poll_id: int, user_id: str, text: str) -> Recorded:
        """An open-text answer (a second one replaces the first)."""
        return self._record(poll_id, user_id, option=TEXT_OPTION, text=text)

    def answer_form(self, *, poll_id: int, user_id: str) -> dict[str, object]:
        with self.uow(read_only=True) as s:  # before the form opens: never waits for a writer
            poll, _ = self._open_poll(s, poll_id, user_id)
            assert poll.id is not None
            mine = s.exec(select(PollVote.text).where(PollVote.poll_id == poll.id,
                                                      PollVote.voter == self.voter(poll.id, user_id))).first()
        return pblocks.answer_modal(poll, current=mine or "")

    def _record(self, poll_id: int, user_id: str, *, option: int, text: str | None = None) -> Recorded:
        now = self.clock.now()
        for attempt in range(2):
            try:
                with self.uow() as s:
                    poll, people = self._open_poll(s, poll_id, user_id, lock=True)
                    assert poll.id is not None
                    voter = self.voter(poll.id, user_id)
                    # This person's rows, and how many people had answered (the poll's lock orders the votes).
                    rows = s.connection().execute(_MINE_AND_COUNT, {"poll_id": poll.id, "voter": voter}).all()
                    mine = [r for r in rows if r.id is not None]
                    now_picks = self._apply(s, poll, mine, voter, people[user_id], user_id, option, text, now)
                    changed = now_picks is not None
                    picks = sorted(v.option for v in mine) if now_picks is None else now_picks
                    due = self._request_refresh(s, poll, now) if changed else None
                    respondents = rows[0].respondents - bool(mine) + bool(picks)  # with this person as now
                break
            except IntegrityError:  # the same person's two clicks at once: the second sees the first
                if attempt:
                    raise
        if due is not None:  # in a storm most votes find the update pending: no dispatch tick per vote
            self.wake(due)
        return Recorded(poll, picks, changed, respondents, answer=text)

    def _apply(
        self, s: Session, poll: Poll, mine: Sequence[sa.Row[Any]], voter: str, side: Side, user_id: str,
        option: int, text: str | None, now: datetime,
    ) -> list[int] | None:
        """Change this person's rows (`mine`: their id, option and text) for one click or answer (a changed vote
        is a new row, with its time): the options they now hold, or None when nothing changed."""
        conn = s.connection()

        def add(value: int) -> None:
            conn.execute(_INSERT_VOTE, {"poll_id": poll.id, "voter": voter, "side": side, "option": value,
                                        "text": text, "user_id": None if poll.anonymous else user_id,
                                        "voted_at": now})

        def drop_mine() -> None:
            if mine:
                conn.execute(_DELETE_MINE, {"poll_id": poll.id, "voter": voter})

        if poll.kind == PollKind.TEXT:
            if mine and mine[0].text == text:
                return None
            drop_mine()
            add(TEXT_OPTION)
            return [TEXT_OPTION]
        if not 0 <= value_index(poll.kind, option) < len(labels_of(poll.kind, poll.options)):
            raise Invalid("That option is not part of this poll any more; vote with the buttons on the poll.")
        current = {v.option: v.id for v in mine}
        if poll.kind == PollKind.MULTIPLE:
            if option in current:
                conn.execute(_DELETE_VOTE, {"vote_id": current[option]})
                return sorted(set(current) - {option})
            if poll.max_picks is not None and len(current) >= poll.max_picks:
                chosen = ", ".join(f"*{escape(poll.options[i])}*" for i in sorted(current) if i < len(poll.options))
                raise Invalid(f"You can pick at most {poll.max_picks} option(s) in this poll, and you have: "
                              f"{chosen}. Click one of them to drop it, then pick another.")
            add(option)
            return sorted({*current, option})
        if list(current) == [option]:
            return None  # the current vote, clicked again
        drop_mine()
        add(option)
        return [option]

    def _open_poll(
        self, s: Session, poll_id: int, user_id: str, *, lock: bool = False
    ) -> tuple[Poll, dict[str, Side]]:
        """The poll (detached: read, not to be changed), when `user_id` may answer it now. `lock`: hold its row
        until the caller's unit of work ends, so the close cannot tally between this check and the vote being
        saved. One statement reads the poll with this person's member row."""
        row = (s.connection().execute(_POLL_LOCKED if lock else _POLL_READ, {"poll_id": poll_id, "user_id": user_id})
               .first() if poll_id else None)
        if row is None:
            raise NotFound("This poll no longer exists.")
        poll = Poll(**{name: row._mapping[name] for name in _POLL_FIELDS})
        people = self._audience_of(s, poll, user_id, Standing.of(row.member_side, row.member_left_at))
        if user_id not in people:
            p = s.get(Partnership, poll.partnership_id)
            assert p is not None  # a poll's partnership outlives it (ON DELETE CASCADE)
            raise Forbidden(f"This poll is for {pblocks.audience_text(poll, p)} only, so your answer is not "
                            "counted. Ask the person who asked it if you should be included.")
        if poll.status == PollStatus.CLOSED or self.clock.now() >= poll.closes_at:
            raise Invalid(f"Poll #{poll.number} closed {pblocks.when(poll.closed_at or poll.closes_at)}; answers "
                          "are no longer taken. `/partner poll list` shows the open ones.")
        return poll, people

    def _respondents(self, s: Session, poll_id: int) -> int:
        return int(s.exec(select(func.count(func.distinct(PollVote.voter))).where(PollVote.poll_id == poll_id)).one())

    def _request_refresh(self, s: Session, poll: Poll, now: datetime) -> datetime | None:
        """Have the poll's message show its tally within about a second (the shared in-place refresh). Returns
        when to nudge the dispatcher, after the commit (`request_refresh`)."""
        if poll.message_ts is None or poll.id is None:
            return None  # the post shows the tally as it is then
        # An update already due reads the votes when it runs, after this one is saved (it first waits for the
        # poll's row, which this vote holds), so a storm re-arms it once, not once per vote.
        return request_refresh(s, kind=POLL_REFRESH, subject_id=poll.id, refreshed_at=poll.refreshed_at, now=now,
                               unless_pending=True)

    def _closed(self, s: Session, poll: Poll, now: datetime, note: str) -> None:
        """The poll has just closed: no more reminders or live updates. One live update may be on its way to
        Slack right now with the open state: it is asked to run once more (it renders the poll as it is then,
        closed), so that the message's last update shows the results whatever order they reach Slack in."""
        assert poll.id is not None
        mark_obsolete(s, kinds=[POLL_REMIND, POLL_REFRESH], subject_id=poll.id, now=now, note=note)
        key = f"{POLL_REFRESH}:{poll.id}"
        if s.exec(select(Occurrence.state).where(Occurrence.key == key)).first() == OccurrenceState.CLAIMED:
            # At once, not a second later: the closed state is never held back (see run_refresh).
            request_run(s, [{"key": key, "kind": POLL_REFRESH, "subject_id": poll.id, "due_at": now}], now)

    # -- closing early, listing --------------------------------------------------------------------------------
    def close_early(self, *, actor: str, poll_id: int | None = None, channel_id: str | None = None,
                    number: int | None = None) -> Outcome:
        """The creator or an owner closes a poll now (its results follow, in place, from the engine)."""
        now = self.clock.now()
        with self.uow() as s:
            poll = self._find(s, poll_id=poll_id, channel_id=channel_id, number=number, lock=True)
            p = s.get(Partnership, poll.partnership_id)
            assert p is not None and poll.id is not None
            self._authorize_manager(s, poll, p, actor, "close it early", then=f" It closes by itself "
                                    f"{pblocks.when(poll.closes_at)}.")
            if poll.status == PollStatus.CLOSED:
                raise Invalid(f"Poll #{poll.number} is already closed.")
            poll.status, poll.closed_at, poll.closed_by = PollStatus.CLOSED, now, actor
            s.add(poll)
            self._closed(s, poll, now, "closed early")
            request_run(s, [{"key": f"{POLL_CLOSE}:{poll.id}", "kind": POLL_CLOSE, "subject_id": poll.id,
                             "due_at": now}], now)
            self.partnerships.audit(s, p, actor, "poll_closed", number=poll.number)
        self.wake()
        return Outcome(f":lock: Closed poll #{poll.number}; its results replace the buttons in a moment.",
                       partnership=p)

    def _authorize_manager(self, s: Session, poll: Poll, p: Partnership, actor: str, what: str,
                           then: str = "") -> None:
        """The one check for what only a poll's creator or an owner of its partnership may do (close it early,
        export it)."""
        if actor == poll.created_by:
            return
        try:
            self.partnerships.authorize(s, p, actor, what, need=Access.OWNER, open_only=False)
        except Forbidden:
            raise Forbidden(f"Only {mention(poll.created_by)}, who asked poll #{poll.number}, or an owner of "
                            f"*{escape(p.name)}* can {what}.{then}") from None

    def _find(self, s: Session, *, poll_id: int | None, channel_id: str | None, number: int | None,
              lock: bool, open_only: bool = True) -> Poll:
        query = select(Poll)
        if poll_id is not None:
            query = query.where(Poll.id == poll_id)
        else:
            p = s.exec(select(Partnership).where(Partnership.channel_id == channel_id)).first()
            if p is None:
                raise NotFound("Run this in the partnership's channel (see `/partner list` for yours).")
            query = query.where(Poll.partnership_id == p.id)
            if number is not None:
                query = query.where(Poll.number == number)
            else:
                if open_only:
                    query = query.where(Poll.status == PollStatus.OPEN)
                query = query.order_by(col(Poll.number).desc())
        poll = s.exec(query.with_for_update() if lock else query).first()
        if poll is None:
            raise NotFound(f"There is no poll #{number} here; `/partner poll list` shows them." if number else
                           "There is no open poll here; `/partner poll list` shows the polls." if open_only else
                           "There is no poll here yet; start one with `/partner poll`.")
        return poll

    # -- exporting ---------------------------------------------------------------------------------------------
    def export(self, *, actor: str, poll_id: int | None = None, channel_id: str | None = None,
               number: int | None = None) -> Outcome:
        """The creator or an owner gets the poll's answers as a CSV file, privately, in their direct message with
        the app. The file shows no more than the poll's message does: nothing while its results are hidden
        until the close, no voter column when anonymous, and (anonymous) no sides while per-side results are
        hidden. Raises SlackError when the upload fails."""
        with self.uow(read_only=True) as s:
            poll = self._find(s, poll_id=poll_id, channel_id=channel_id, number=number, lock=False,
                              open_only=False)
            p = s.get(Partnership, poll.partnership_id)
            assert p is not None and poll.id is not None
            self._authorize_manager(s, poll, p, actor, "export it")
            # In the order they came: a changed vote is a new row.
            votes = list(s.exec(select(PollVote).where(PollVote.poll_id == poll.id).order_by(col(PollVote.id))).all())
            res = self.results(s, poll)
        if poll.status == PollStatus.OPEN:
            if poll.results == ResultsMode.AFTER_CLOSE:
                raise Invalid(f"Poll #{poll.number} shows its results only once it closes "
                              f"({pblocks.when(poll.closes_at)}); export it then.")
            if poll.anonymous and res.total.respondents < ANONYMOUS_TALLY_MIN:
                raise Invalid(f"Poll #{poll.number} is anonymous: its answers can be exported once "
                              f"{ANONYMOUS_TALLY_MIN} people have answered, or when it closes.")
        names = {} if poll.anonymous else self.partnerships.names(sorted({v.user_id for v in votes if v.user_id}))
        header, rows = export_table(poll, votes, names, sides=not (poll.anonymous and res.side_note))
        self.slack.send_file(
            actor, filename=export_filename(poll),
            content=csv_bytes(header, rows), title=f"Poll #{poll.number}: {poll.question}"[:250],
            comment=pblocks.export_comment(poll, p.name, answers=len(rows), respondents=res.total.respondents))
        with self.uow() as s:
            self.partnerships.audit(s, p, actor, "poll_exported", number=poll.number, rows=len(rows))
        return Outcome(f":page_facing_up: Poll #{poll.number} is exported: the CSV file is in your direct message "
                       "with Partnerbot.", partnership=p)

    def listing(self, *, channel_id: str, actor: str) -> tuple[Partnership, list[Listed]]:
        p = self.partnerships.require(channel_id, actor, "see its polls", open_only=False).partnership
        with self.uow(read_only=True) as s:
            open_ = list(s.exec(select(Poll).where(Poll.partnership_id == p.id, Poll.status == PollStatus.OPEN)
                                .order_by(col(Poll.closes_at))).all())
            closed = list(s.exec(select(Poll).where(Poll.partnership_id == p.id, Poll.status == PollStatus.CLOSED)
                                 .order_by(col(Poll.closed_at).desc()).limit(LIST_CLOSED)).all())
            counts = {poll.id: self._respondents(s, poll.id) for poll in open_ + closed if poll.id is not None}
        return p, [Listed(poll, counts.get(poll.id, 0), self._link(poll)) for poll in open_ + closed]

    def _link(self, poll: Poll) -> str | None:
        if not poll.message_ts:
            return None
        try:
            return self.slack.permalink(poll.channel_id, poll.message_ts)
        except SlackError as exc:
            log.info("no link to poll %s: %s", poll.id, exc.code)
            return None

    # -- scheduled work --------------------------------------------------------------------------------------------
    def results(self, s: Session, poll: Poll) -> PollResults:
        assert poll.id is not None
        votes = list(s.exec(select(PollVote).where(PollVote.poll_id == poll.id).order_by(col(PollVote.id))).all())
        spans = len(set(self._audience_of(s, poll).values())) > 1
        res = tally(poll.kind, poll.options, votes, spans_sides=spans, min_per_side=self.min_per_side)
        if poll.anonymous:
            # Sorted, so the order of the answers says nothing about who answered when.
            for counted in (res.total, *res.by_side.values()):
                counted.answers.sort()
        return res

    def _view(self, s: Session, poll: Poll) -> tuple[Partnership, PollResults]:
        p = s.get(Partnership, poll.partnership_id)
        assert p is not None
        return p, self.results(s, poll)

    def run_post(self, occ: Occurrence, ctx: RunContext) -> Completion:
        with self.uow(read_only=True) as s:
            poll = s.get(Poll, occ.subject_id)
            if poll is None:
                return Completion.obsolete("the poll no longer exists")
            p, res = self._view(s, poll)
            # A poll whose closing time passed before it could be posted (the bot was down) is not posted with
            # buttons: its close sends the results to its creator.
            unwanted = ("the poll closed before it was posted" if poll.status == PollStatus.CLOSED
                        else "its closing time passed before it was posted" if ctx.now >= poll.closes_at
                        else "the partnership is closed" if p.status != PartnershipStatus.ACTIVE else None)
            if unwanted is not None and (done := ctx.unless_posted(unwanted)) is not None:
                return done
        channel, ts = ctx.post(poll.channel_id, text=pblocks.poll_text(poll),
                               blocks=pblocks.poll_blocks(poll, p, res, now=ctx.now))
        poll_id = poll.id

        def record(s: Session) -> None:
            row = s.get(Poll, poll_id)
            if row is not None:
                row.message_ts, row.channel_id, row.refreshed_at = ts, channel, ctx.now
                s.add(row)
                # Votes came in, or the poll closed, while it was being posted: the message catches up.
                if row.status == PollStatus.CLOSED or self._respondents(s, poll_id or 0):
                    self._request_refresh(s, row, ctx.now)

        return Completion.done(channel, ts, apply=record)

    def run_refresh(self, occ: Occurrence, ctx: RunContext) -> Completion:
        """Update the poll's message in place with the poll as it is now (open, or closed meanwhile)."""
        with self.uow() as s:  # short: record when this update goes out, before reading what it shows
            poll = s.get(Poll, occ.subject_id, with_for_update=True)
            if poll is None or not poll.message_ts:
                return Completion.obsolete("the poll is not posted")
            if poll.status == PollStatus.OPEN and (later := refresh_too_soon(occ, poll.refreshed_at, ctx.now)):
                return later  # runs again after the one in between: not too soon
            # Votes saved from here on re-arm this occurrence a second later (a storm costs about one update a
            # second, not one per vote); they wait for this short transaction, never for Slack.
            poll.refreshed_at = ctx.now
            s.add(poll)
        with self.uow(read_only=True) as s:
            poll = s.get(Poll, occ.subject_id)
            if poll is None or not poll.message_ts:
                return Completion.obsolete("the poll is not posted")
            p, res = self._view(s, poll)
        try:
            ctx.slack.update(poll.channel_id, poll.message_ts, text=pblocks.poll_text(poll),
                             blocks=pblocks.poll_blocks(poll, p, res, now=ctx.now))
        except SlackError as exc:
            if exc.code in MESSAGE_GONE:
                return Completion.obsolete(f"the poll's message cannot be updated: {exc.code}")
            raise  # retried (the votes are saved; the next update shows them all)
        return Completion.done(poll.channel_id, poll.message_ts)

    def run_close(self, occ: Occurrence, ctx: RunContext) -> Completion:
        with self.uow() as s:
            poll = s.get(Poll, occ.subject_id, with_for_update=True)  # waits for a vote being saved
            if poll is None:
                return Completion.obsolete("the poll no longer exists")
            if poll.status == PollStatus.OPEN:  # from here on no vote is taken
                poll.status, poll.closed_at = PollStatus.CLOSED, ctx.now
                poll.closed_late = ctx.now - poll.closes_at > LATE_AFTER
                s.add(poll)
                self._closed(s, poll, ctx.now, "the poll closed")
            poll.refreshed_at = ctx.now  # the closed message is the last update
            s.add(poll)
            p, res = self._view(s, poll)
        text, blocks = pblocks.poll_text(poll), pblocks.poll_blocks(poll, p, res, now=ctx.now)
        gone = poll.message_ts is None
        if not gone:
            assert poll.message_ts is not None
            try:
                ctx.slack.update(poll.channel_id, poll.message_ts, text=text, blocks=blocks)
            except SlackError as exc:
                if exc.code not in MESSAGE_GONE:
                    raise
                gone = True
        if gone:  # the channel was archived or the message deleted: the creator gets the results privately
            channel, ts = ctx.post(poll.created_by, text=pblocks.results_dm_text(poll),
                                   blocks=pblocks.results_dm_blocks(poll, p, res))
            return Completion.done(channel, ts)
        if poll.kind == PollKind.TEXT and res.total.answers:
            channel, ts = ctx.post(poll.channel_id, thread_ts=poll.message_ts, text=pblocks.answers_text(poll),
                                   blocks=pblocks.answers_blocks(poll, res))
            return Completion.done(channel, ts)
        return Completion.done(poll.channel_id, poll.message_ts)

    def run_reminder(self, occ: Occurrence, ctx: RunContext) -> Completion:
        """The poll's reminder time (no `user` in the payload): plans one reminder per person of the audience as
        it is now (people who joined the partnership since the poll was created too), keyed per person, so each
        is reminded once. One person's reminder (`user`): a direct message with a link to the poll, unless they
        answered, left the audience or are away."""
        if "user" not in occ.payload:
            return self._remind_all(occ, ctx)
        user = str(occ.payload["user"])
        with self.uow(read_only=True) as s:
            poll = s.get(Poll, occ.subject_id)
            if poll is None or poll.status == PollStatus.CLOSED or not poll.message_ts:
                return Completion.obsolete("the poll is closed or not posted")
            assert poll.id is not None
            # One note whatever the reason, so that no row says who answered an anonymous poll.
            answered = s.exec(select(PollVote.id).where(PollVote.poll_id == poll.id,
                                                        PollVote.voter == self.voter(poll.id, user))).first()
            if (answered is not None or user not in self._audience_of(s, poll, user)
                    or away_on(s, [user], local_date(ctx.now, poll.timezone))):
                return Completion.obsolete("no reminder needed")
            p = s.get(Partnership, poll.partnership_id)
            name = p.name if p is not None else ""
        try:
            link = ctx.slack.permalink(poll.channel_id, poll.message_ts)
        except SlackError as exc:
            if exc.code not in MESSAGE_GONE:
                raise
            return Completion.obsolete("the poll's message is gone")
        channel, ts = ctx.post(user, text=pblocks.reminder_text(poll, name),
                               blocks=pblocks.reminder_blocks(poll, name, link))
        return Completion.done(channel, ts)

    def _remind_all(self, occ: Occurrence, ctx: RunContext) -> Completion:
        with self.uow(read_only=True) as s:
            poll = s.get(Poll, occ.subject_id)
            if poll is None or poll.status == PollStatus.CLOSED:
                return Completion.obsolete("the poll is closed")
            if not poll.message_ts:  # each reminder links to the message: none before it is posted
                post = s.exec(select(Occurrence.state, Occurrence.run_at)
                              .where(Occurrence.key == f"{POLL_POST}:{poll.id}")).first()
                if post is None or post.state not in (OccurrenceState.PENDING, OccurrenceState.CLAIMED):
                    return Completion.obsolete("the poll was never posted")
                return run_again(occ, max(ctx.now, post.run_at) + REMIND_AFTER_POST, ctx.now,
                                 "the poll is not posted yet")
            people = sorted(self.audience(s, poll.partnership_id, poll.audience, poll.chosen))
        poll_id, closes_at = poll.id, poll.closes_at

        def plan(s: Session) -> list[dict[str, Any]]:
            return [{"key": f"{POLL_REMIND}:{poll_id}:{user}", "kind": POLL_REMIND, "subject_id": poll_id,
                     "due_at": ctx.now, "not_after": closes_at, "payload": {"user": user}} for user in people]

        return Completion.done(apply=plan)

    def on_failure(self, s: Session, occ: Occurrence, error: str) -> None:
        """A poll's post or close failed for good: its creator is told what and why (once per poll and kind).
        A channel found archived or deleted is recorded on the partnership (its owners are told once)."""
        poll = s.get(Poll, occ.subject_id)
        if poll is None:
            return
        p = s.get(Partnership, poll.partnership_id)
        now = self.clock.now()
        if p is not None and p.status == PartnershipStatus.ACTIVE and occ.kind == POLL_POST and error in CHANNEL_GONE:
            self.partnerships.mark_channel(s, p, gone=True, error=error)
        text = pblocks.failure_notice(WHAT_FAILED.get(occ.kind, "run your poll"), poll, p.name if p else "", error)
        plan_notices(s, subject_id=poll.partnership_id, people=[poll.created_by], text=text, now=now,
                     key=f"notice:poll:{poll.id}:{occ.kind}")

    def results_summary(self, recorded: Recorded) -> str:
        """The private confirmation of a click or an answer."""
        return pblocks.recorded_text(recorded.poll, recorded.picks, changed=recorded.changed,
                                     respondents=recorded.respondents, answer=recorded.answer)


def export_filename(poll: Poll) -> str:
    """poll-3-which-launch-date.csv (just poll-3.csv when the question has no Latin letters or digits)."""
    slug = slugify(poll.question)[:40].strip("-_") if re.search(r"[A-Za-z0-9]", poll.question) else ""
    return f"poll-{poll.number}-{slug}.csv" if slug else f"poll-{poll.number}.csv"


EXPORT_SIDES = {Side.OURS: "ours", Side.PARTNER: "partner"}


def export_table(
    poll: Poll, votes: Sequence[PollVote], names: dict[str, str], *, sides: bool,
) -> tuple[list[str], list[list[Cell]]]:
    """The CSV's header and rows: one row per answer (multiple choice: per picked option), oldest first. An
    anonymous poll has no voter columns at all, gives the day of each answer, not its time, and lists its rows by
    answer, not in the order they came in (an exact time, or one person's picks side by side, could tell who
    answered what to someone who knows when people voted), and no day at all when fewer people answered on one
    of them than the tally needs; `sides` False leaves the side column empty."""
    anonymous = poll.anonymous
    header = ["poll", "question", "answered_on_utc" if anonymous else "answered_at_utc", "answer", "side"]
    if not poll.anonymous:
        header += ["voter_id", "voter_name"]
    rows: list[list[Cell]] = []
    for v in votes:
        answer: Cell
        if poll.kind == PollKind.TEXT:
            answer = v.text or ""
        elif poll.kind.is_choice:
            answer = poll.options[v.option] if 0 <= v.option < len(poll.options) else ""
        else:
            answer = v.option
        at: Cell = v.voted_at.astimezone(UTC) if v.voted_at is not None else None
        if anonymous and isinstance(at, datetime):
            at = at.date().isoformat()
        row: list[Cell] = [poll.number, poll.question, at, answer,
                           EXPORT_SIDES.get(v.side, "") if sides and v.side else ""]
        if not poll.anonymous:
            row += [v.user_id or "", names.get(v.user_id or "", v.user_id or "")]
        rows.append(row)
    if anonymous:
        # A day (with its side, when sides show) on which fewer people answered than the tally needs would point at
        # them as a side does: then no row gives its day.
        answered: dict[tuple[Cell, Cell], set[str]] = {}
        for v, row in zip(votes, rows, strict=True):
            answered.setdefault((row[2], row[4]), set()).add(v.voter)
        if any(len(voters) < ANONYMOUS_TALLY_MIN for voters in answered.values()):
            for row in rows:
                row[2] = None
        # by answer (numbers as numbers), then day and side
        rows.sort(key=lambda r: (r[3] if isinstance(r[3], int) else -1, str(r[3]), str(r[2]), str(r[4])))
    return header, rows


def remind_time(choice: str, now: datetime, closes_at: datetime) -> datetime | None:
    """When the one reminder goes: halfway (`half`), an hour before closing (`hour`), or never (`none`);
    never for a poll that closes within the hour."""
    if choice == "none" or closes_at - now <= NO_REMINDER_WITHIN:
        return None
    return now + (closes_at - now) / 2 if choice == "half" else closes_at - NO_REMINDER_WITHIN

