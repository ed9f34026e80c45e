"""Milestones and recognition: a partnership's milestones with reminders and celebrations, kudos between its
people, the values kudos are tagged with, the wins report and the monthly recap.

Scheduled work runs on the engine (services/scheduling.py): reminders (`milestone_remind`, one per owner,
7 days and 1 day before at 09:00 local, runnable until the end of that local day), the overdue note
(`milestone_overdue`, 09:00 the day after the due date, never skipped), the monthly recap (`wins_recap`) and
every post in the channel (`partnership_post`: announcements, celebrations, kudos), planned in the same
transaction as the change it tells about, so it is posted exactly once, retried when Slack fails, and the
change stands whatever happens to the post. A milestone's `version` goes up with every change of its due date,
owners or status; its pending reminders are then marked obsolete and the new ones planned at once.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from blocks import milestones as mblocks
from blocks.text import escape, mention
from models.milestone import (
    DEFAULT_VALUES,
    DONE_NOTE_MAX,
    KUDOS_REASON_MAX,
    VALUE_MAX,
    VALUES_MAX,
    Kudos,
    KudosReceiver,
    Milestone,
    MilestoneStatus,
    PartnershipValues,
    Wins,
    tally_wins,
)
from models.partnership import Partnership, PartnershipStatus, Side
from models.scheduling import Occurrence
from services.errors import Forbidden, Invalid, NotFound
from services.inputs import DATE_FORM, MilestoneInput, looks_like_date, parse_date
from services.partnerships import Access, Outcome, PartnershipFeature, advice
from services.recurrence import (
    end_of_local_day,
    first_working_day,
    local_date,
    local_day_window,
    local_to_utc,
    month_start,
)
from services.scheduling import (
    KINDS,
    MILESTONE_OVERDUE,
    MILESTONE_REMIND,
    PARTNERSHIP_POST,
    PERMANENT_ERRORS,
    WINS_RECAP,
    Completion,
    RunContext,
    Subject,
    insert_new,
    mark_obsolete,
    plan_notices,
    planning_rows,
    skip_by_key,
    upsert_planned,
)

log = logging.getLogger(__name__)

NINE = time(9, 0)  # reminders, overdue notes and the recap go out at 09:00 in the partnership's zone
REMIND_DAYS = (7, 1)
WINDOWS = {"30d": 30, "90d": 90, "all": None}
DEFAULT_WINDOW = "90d"
CHANNEL_GONE = frozenset({"is_archived", "channel_not_found"})
_VALUE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

# What the planner reads (`milestone_rows`, `recap_rows`) of every open milestone and active partnership, as Core
# rows: for thousands of them, building ORM objects costs more than planning their occurrences.
_P: sa.Table = Partnership.__table__  # type: ignore[attr-defined]
_MS: sa.Table = Milestone.__table__  # type: ignore[attr-defined]
_PLANNED_MILESTONES = (
    sa.select(_MS.c.id, _MS.c.status, _MS.c.due_date, _MS.c.owners, _MS.c.version, _MS.c.changed_at,
              _P.c.timezone.label("zone"))
    .join_from(_MS, _P, _P.c.id == _MS.c.partnership_id)
    .where(_MS.c.status == MilestoneStatus.OPEN, _P.c.status == PartnershipStatus.ACTIVE)
)
_RECAPPED = sa.select(_P.c.id, _P.c.timezone, _P.c.created_at).where(
    _P.c.status == PartnershipStatus.ACTIVE, _P.c.channel_archived_at.is_(None))
VALUES_USAGE = "`/partner values #trust #delivery #speed` (or `/partner values default` for the defaults)"
# Under the form's Owners input (plain text, at most 150 characters): what is wrong and what to do.
OWNERS_OUTSIDE = ("Only people recorded in the partnership (either side) can own a milestone; an owner adds them "
                  "with /partner add @person.")

Row = dict[str, Any]


@dataclass
class MilestoneList:
    partnership: Partnership
    upcoming: list[Milestone]
    overdue: list[Milestone]
    done: list[Milestone]
    today: date


class MilestoneService(PartnershipFeature):
    # -- who is in the partnership: through PartnershipService's audiences ---------------------------------------
    def people(self, s: Session, partnership_id: int | None) -> dict[str, Side]:
        """Everyone a milestone or kudos can name: recorded in the partnership, either side, still in its channel
        (people who left are not offered as owners, contributors or people to thank), with their side."""
        return {m.user_id: Side(m.side) for m in self.partnerships.audience(s, partnership_id or 0)
                if m.user_id != self.bot_user_id}

    def side_of(self, s: Session, partnership_id: int | None, user_id: str) -> Side | None:
        """Which side a person is recorded on (also after they left the channel); None: not recorded."""
        return self.partnerships.side_of(s, partnership_id or 0, user_id)

    # -- adding ----------------------------------------------------------------------------------------------
    def prepare_add(self, *, channel_id: str, actor: str) -> tuple[Partnership, date]:
        """Check that `actor` may add milestones here; returns the partnership and its local today."""
        p = self.partnerships.require_owner(channel_id, actor, "add milestones").partnership
        return p, local_date(self.clock.now(), p.timezone)

    def add(self, *, partnership_id: int, actor: str, inp: MilestoneInput) -> Outcome:
        p = self.partnerships.require_owner_by_id(partnership_id, actor, "add milestones").partnership
        now = self.clock.now()
        with self.uow() as s:
            s.get(Partnership, p.id, with_for_update=True)  # numbers are given one after the other
            self._check(s, p, inp, now)
            number = (s.exec(select(func.max(Milestone.number)).where(Milestone.partnership_id == p.id)).one() or 0) + 1
            assert p.id is not None
            owners = list(inp.owners) or [actor]  # somebody is reminded: by default whoever added it
            m = Milestone(partnership_id=p.id, number=number, title=inp.title, done_means=inp.done_means,
                          due_date=inp.due_date, original_due_date=inp.due_date, owners=owners,
                          celebrate=inp.celebrate, created_by=actor, created_at=now, changed_at=now)
            s.add(m)
            s.flush()
            self._replan(s, m, p, now)
            self._post(s, p, f"milestone:{m.id}:added", mblocks.added_text(m, actor), now)
            self.partnerships.audit(s, p, actor, "milestone_added", milestone=m.number, title=m.title,
                                    due=m.due_date.isoformat(), owners=m.owners)
            line = f"#{m.number} *{escape(m.title)}* due {mblocks.day(m.due_date)}"
        self.wake()
        return Outcome(f":white_check_mark: Added milestone {line}. `/partner milestones` lists them.", partnership=p)

    def check_input(self, *, partnership_id: int, actor: str, inp: MilestoneInput,
                    milestone_id: int | None = None) -> None:
        """What a form submission would be refused for (before the form closes): who may (an owner adds; the
        owners of the partnership or of the milestone edit), a date in the past, owners outside."""
        if not milestone_id:
            self.partnerships.require_owner_by_id(partnership_id, actor, "add milestones")
        with self.uow(read_only=True) as s:
            m: Milestone | None = None
            if milestone_id:
                m, p = self._load(s, milestone_id)
                self._authorize(s, p, m, actor, "edit it")
            elif (found := s.get(Partnership, partnership_id)) is not None:
                p = found
            else:
                raise NotFound("That partnership no longer exists.")
            self._check(s, p, inp, self.clock.now(), check_date=m is None, keep=m.owners if m is not None else (),
                        need_owners=m is not None)

    def _check(
        self, s: Session, p: Partnership, inp: MilestoneInput, now: datetime, *, check_date: bool = True,
        keep: Sequence[str] = (), need_owners: bool = False,
    ) -> None:
        """Refuse a due date in the past and owners who are not in the partnership (`keep`: owners a milestone
        already has may stay, also after they left the channel); `need_owners` (an edit): refuse emptying the
        owners, as then nobody would be reminded (adding falls back to whoever adds it)."""
        if check_date:
            self._check_due(p, inp.due_date, now)
        if need_owners and not inp.owners:
            raise Invalid("Keep at least one owner: the owners get the milestone's reminders.",
                          {"owners": "Keep at least one owner: the owners get the milestone's reminders."})
        people = self.people(s, p.id)
        outside = [u for u in inp.owners if u not in people and u not in keep]
        if outside:
            raise Invalid(
                f"{', '.join(mention(u) for u in outside)} {'is' if len(outside) == 1 else 'are'} not in "
                f"*{escape(p.name)}*. Owners must be people recorded in the partnership (either side); an owner of "
                "the partnership adds them with `/partner add @person`.",
                {"owners": OWNERS_OUTSIDE})

    def _check_due(self, p: Partnership, due: date, now: datetime) -> None:
        """Refuse a due date before the partnership's local today (adding and rescheduling)."""
        today = local_date(now, p.timezone)
        if due < today:
            problem = (f"{due.isoformat()} is in the past (today is {today.isoformat()} in "
                       f"{p.timezone}); give a date from today on")
            raise Invalid(f"{escape(problem)}.", {"due_date": problem})

    # -- listing -----------------------------------------------------------------------------------------------
    def overview(self, *, channel_id: str, actor: str) -> MilestoneList:
        p = self.partnerships.require_member(channel_id, actor, "see its milestones").partnership
        today = local_date(self.clock.now(), p.timezone)
        with self.uow(read_only=True) as s:
            open_ = list(s.exec(select(Milestone).where(Milestone.partnership_id == p.id,
                                                        Milestone.status == MilestoneStatus.OPEN)
                                .order_by(col(Milestone.due_date), col(Milestone.number))).all())
            done = list(s.exec(select(Milestone).where(Milestone.partnership_id == p.id,
                                                       Milestone.status == MilestoneStatus.DONE)
                               .order_by(col(Milestone.done_at).desc()).limit(mblocks.LIST_DONE_MAX)).all())
        return MilestoneList(p, [m for m in open_ if m.due_date >= today], [m for m in open_ if m.due_date < today],
                             done, today)

    def find(self, *, channel_id: str, actor: str, ref: str, status: MilestoneStatus = MilestoneStatus.OPEN) -> int:
        """The id of the milestone `ref` (its number, `#3`, or its title) of this channel's partnership."""
        p = self.partnerships.require_member(channel_id, actor, "work with its milestones").partnership
        text = ref.strip()
        if not text:
            raise Invalid("Say which milestone: its number or its title (`/partner milestones` lists them).")
        with self.uow(read_only=True) as s:
            query = select(Milestone).where(Milestone.partnership_id == p.id)
            number = text.removeprefix("#")
            if number.isdigit() and len(number) < 9:
                m = s.exec(query.where(Milestone.number == int(number))).first()
            else:
                wanted = text.lower()
                rows = [m for m in s.exec(query.where(Milestone.status == status)).all()]
                exact = [m for m in rows if m.title.lower() == wanted]
                partial = [m for m in rows if wanted in m.title.lower()]
                m = exact[0] if len(exact) == 1 else partial[0] if len(partial) == 1 else None
                if len(partial) > 1 and not exact:
                    raise Invalid(f"Several milestones match “{escape(text[:60])}”: "
                                  + ", ".join(f"#{x.number}" for x in partial[:10]) + ". Give its number.")
            if m is None:
                raise NotFound(f"*{escape(p.name)}* has no {status.value} milestone “{escape(text[:60])}”. "
                               "`/partner milestones` lists them with their numbers.")
            assert m.id is not None
            return m.id

    # -- forms behind the buttons ------------------------------------------------------------------------------
    def open_milestone(self, *, milestone_id: int, actor: str, what: str) -> tuple[Partnership, Milestone]:
        """The open milestone and its partnership, when `actor` may `what` it (partnership or milestone owners)."""
        with self.uow(read_only=True) as s:  # before a form opens: never waits for a writer
            m, p = self._load(s, milestone_id)
            self._authorize(s, p, m, actor, what)
            self._require_open(m, what)
            return p, m

    def edit(self, *, milestone_id: int, actor: str, inp: MilestoneInput) -> Outcome:
        now = self.clock.now()
        with self.uow() as s:
            m, p = self._load(s, milestone_id, lock=True)
            self._authorize(s, p, m, actor, "edit it")
            self._require_open(m, "edit it")
            self._check(s, p, inp, now, check_date=False, keep=m.owners, need_owners=True)
            owners_changed = list(inp.owners) != list(m.owners)
            m.title, m.done_means, m.celebrate, m.owners = inp.title, inp.done_means, inp.celebrate, list(inp.owners)
            if owners_changed:
                self._bump(s, m, p, now)
            s.add(m)
            self.partnerships.audit(s, p, actor, "milestone_edited", milestone=m.number, title=m.title, owners=m.owners)
            line = f"#{m.number} *{escape(m.title)}*"
        self.wake()
        return Outcome(f":white_check_mark: Saved milestone {line}.", partnership=p)

    def reschedule(self, *, milestone_id: int, actor: str, due: date) -> Outcome:
        now = self.clock.now()
        with self.uow() as s:
            m, p = self._load(s, milestone_id, lock=True)
            self._authorize(s, p, m, actor, "reschedule it")
            self._require_open(m, "reschedule it")
            self._check_due(p, due, now)
            if due == m.due_date:
                raise Invalid(f"It is already due {mblocks.day(due)}; pick another date.",
                              {"due_date": "That is its due date already."})
            old, m.due_date = m.due_date, due
            self._bump(s, m, p, now)
            self._post(s, p, f"milestone:{m.id}:rescheduled:{m.version}", mblocks.rescheduled_text(m, old, actor), now)
            self.partnerships.audit(s, p, actor, "milestone_rescheduled", milestone=m.number, old=old.isoformat(),
                                    new=due.isoformat(), original=m.original_due_date.isoformat())
            line = f"#{m.number} *{escape(m.title)}* is now due {mblocks.day(due)}"
        self.wake()
        return Outcome(f":spiral_calendar_pad: Milestone {line}; its reminders follow the new date.", partnership=p)

    def cancel(self, *, milestone_id: int, actor: str) -> Outcome:
        now = self.clock.now()
        with self.uow() as s:
            m, p = self._load(s, milestone_id, lock=True)
            self._authorize(s, p, m, actor, "cancel it")
            self._require_open(m, "cancel it")
            m.status, m.cancelled_at, m.cancelled_by = MilestoneStatus.CANCELLED, now, actor
            self._bump(s, m, p, now)
            self._post(s, p, f"milestone:{m.id}:cancelled:{m.version}", mblocks.cancelled_text(m, actor), now)
            self.partnerships.audit(s, p, actor, "milestone_cancelled", milestone=m.number)
            line = f"#{m.number} *{escape(m.title)}*"
        self.wake()
        return Outcome(f":heavy_multiplication_x: Cancelled milestone {line}; its reminders are dropped.",
                       partnership=p)

    # -- done, celebration, reopen ------------------------------------------------------------------------------
    def check_done(self, *, milestone_id: int, actor: str, contributors: Sequence[str], note: str) -> None:
        """What marking it done would be refused for (shown under the form's inputs)."""
        with self.uow(read_only=True) as s:
            m, p = self._load(s, milestone_id)
            self._authorize(s, p, m, actor, "mark it done")
            self._done_input(s, p, m, contributors, note)

    def _done_input(self, s: Session, p: Partnership, m: Milestone, contributors: Sequence[str],
                    note: str) -> list[dict[str, str]]:
        if m.status == MilestoneStatus.DONE:
            who = f" by {mention(m.done_by)}" if m.done_by else ""
            raise Invalid(f"Milestone #{m.number} was already marked done{who}; it was celebrated once.")
        self._require_open(m, "mark it done")
        if len(note) > DONE_NOTE_MAX:
            problem = f"The note is {len(note)} characters long; the limit is {DONE_NOTE_MAX}"
            raise Invalid(f"{problem}.", {"note": problem})
        # Credit goes to anyone recorded, also someone who has left the channel since doing the work.
        chosen = list(dict.fromkeys(contributors))
        sides = {u: self.side_of(s, p.id, u) for u in chosen}
        outside = [u for u, side in sides.items() if side is None]
        if outside:
            raise Invalid(f"{', '.join(mention(u) for u in outside)} not in *{escape(p.name)}*: choose people "
                          "recorded in the partnership (either side).",
                          {"contributors": "Choose people recorded in the partnership (either side)."})
        if not chosen:
            raise Invalid("Choose who made it happen.", {"contributors": "Choose at least one person."})
        return [{"user": u, "side": side.value} for u, side in sides.items() if side is not None]

    def mark_done(self, *, milestone_id: int, actor: str, contributors: Sequence[str], note: str) -> Outcome:
        """Record it done and plan its celebration (unless it is not to be celebrated). A second submission
        (a double click) is refused: it is celebrated once. The celebration is retried until posted."""
        now = self.clock.now()
        note = note.strip()
        with self.uow() as s:
            m, p = self._load(s, milestone_id, lock=True)
            self._authorize(s, p, m, actor, "mark it done")
            m.contributors = self._done_input(s, p, m, contributors, note)
            m.status, m.done_at, m.done_by, m.done_note = MilestoneStatus.DONE, now, actor, note
            m.done_on = local_date(now, p.timezone)
            m.times_done += 1
            self._bump(s, m, p, now)
            if m.celebrate:
                self._post(s, p, f"milestone:{m.id}:done:{m.times_done}", mblocks.celebration_text(p.name, m), now,
                           blocks=mblocks.celebration_blocks(p.name, m, p.partner_org))
            self.partnerships.audit(s, p, actor, "milestone_done", milestone=m.number,
                                    contributors=[c["user"] for c in m.contributors],
                                    against_plan=mblocks.against_plan(m.due_date, m.done_on))
            line = f"#{m.number} *{escape(m.title)}* is done ({mblocks.against_plan(m.due_date, m.done_on)})"
            celebrate = m.celebrate
        self.wake()
        tail = " The celebration is posted in the channel." if celebrate else " It is recorded without a celebration."
        return Outcome(f":tada: Milestone {line}.{tail}", partnership=p)

    def reopen(self, *, milestone_id: int, actor: str) -> Outcome:
        now = self.clock.now()
        with self.uow() as s:
            m, p = self._load(s, milestone_id, lock=True)
            self._authorize(s, p, m, actor, "reopen it")
            if m.status != MilestoneStatus.DONE:
                raise Invalid(f"Milestone #{m.number} is {m.status.value}, not done: only done ones can be reopened.")
            m.status, m.done_at, m.done_on, m.done_by, m.contributors, m.done_note = (
                MilestoneStatus.OPEN, None, None, None, [], "")
            self._bump(s, m, p, now)
            today = local_date(now, p.timezone)
            if m.due_date < today:  # the reopen note says it is late: no separate overdue note after it
                skip_by_key(s, [r for r in milestone_rows(m, p.timezone, now) if r["kind"] == MILESTONE_OVERDUE],
                            now, "the reopen note said it is overdue")
            self._post(s, p, f"milestone:{m.id}:reopened:{m.version}", mblocks.reopened_text(m, actor, today), now)
            self.partnerships.audit(s, p, actor, "milestone_reopened", milestone=m.number)
            line = f"#{m.number} *{escape(m.title)}*; {mblocks.due_phrase(m.due_date, today)}"
        self.wake()
        return Outcome(f":arrows_counterclockwise: Reopened milestone {line}.", partnership=p)

    # -- kudos and values --------------------------------------------------------------------------------------
    def kudos(self, *, channel_id: str, actor: str, receivers: Sequence[str], reason: str,
              request_key: str | None = None) -> Outcome:
        p = self.partnerships.require_member(channel_id, actor, "give kudos").partnership
        receivers = list(dict.fromkeys(receivers))
        if not receivers:
            raise Invalid("Say who to thank with @mentions: `/partner kudos @person [@person …] <why>`.")
        if actor in receivers:
            raise Invalid("Kudos are for thanking others: leave yourself out. "
                          "`/partner kudos @person <why>` thanks someone else.")
        now = self.clock.now()
        with self.uow() as s:
            if request_key and s.exec(select(Kudos.id).where(Kudos.request_key == request_key)).first() is not None:
                return Outcome(":clap: Your kudos are posted in the channel.", partnership=p)
            people = self.people(s, p.id)
            outside = [u for u in receivers if u not in people]
            if outside:
                raise Invalid(f"{', '.join(mention(u) for u in outside)} {'is' if len(outside) == 1 else 'are'} not "
                              f"in *{escape(p.name)}*: kudos go to people recorded in the partnership (either side).")
            values = self._values(s, p.id)
            reason, value = _take_value(reason, values)
            if not reason:
                raise Invalid("Say why you thank them: `/partner kudos @person for unblocking the pilot "
                              f"#{values[0] if values else 'trust'}`.")
            if len(reason) > KUDOS_REASON_MAX:
                raise Invalid(f"The reason is {len(reason)} characters long; the limit is {KUDOS_REASON_MAX}.")
            giver_side = self.side_of(s, p.id, actor) or Side.OURS
            cross = any(people[u] != giver_side for u in receivers)
            assert p.id is not None
            k = Kudos(partnership_id=p.id, giver=actor, giver_side=giver_side, reason=reason, value=value,
                      cross_org=cross, request_key=request_key, created_at=now)
            s.add(k)
            try:
                s.flush()
            except IntegrityError:  # the same request at once: the first one posts
                s.rollback()
                return Outcome(":clap: Your kudos are posted in the channel.", partnership=p)
            for u in receivers:
                s.add(KudosReceiver(kudos_id=k.id or 0, user_id=u, side=people[u]))
            self._post(s, p, f"kudos:{k.id}", mblocks.kudos_text(actor, receivers), now,
                       blocks=mblocks.kudos_blocks(actor, receivers, reason, value, cross))
        self.wake()
        return Outcome(":clap: Your kudos are posted in the channel.", partnership=p)

    def values(self, *, channel_id: str, actor: str) -> tuple[Partnership, list[str]]:
        p = self.partnerships.require_member(channel_id, actor, "see its values").partnership
        with self.uow(read_only=True) as s:
            return p, self._values(s, p.id)

    def set_values(self, *, channel_id: str, actor: str, raw: str) -> Outcome:
        p = self.partnerships.require_owner(channel_id, actor, "change its values").partnership
        reset = raw.strip().lower() == "default"
        tokens = [] if reset else [t.lstrip("#").lower() for t in re.split(r"[\s,]+", raw) if t.strip("#")]
        bad = [t for t in tokens if not _VALUE.match(t) or len(t) > VALUE_MAX]
        if bad:
            raise Invalid(f"“{escape(bad[0][:40])}” is not a value: use one word of letters, digits, - or _ "
                          f"(up to {VALUE_MAX} characters), e.g. {VALUES_USAGE}.")
        if not tokens and not reset:
            raise Invalid(f"Give the values to tag kudos with: {VALUES_USAGE}.")
        chosen = list(dict.fromkeys(tokens))
        if len(chosen) > VALUES_MAX:
            raise Invalid(f"That is {len(chosen)} values; the limit is {VALUES_MAX}.")
        now = self.clock.now()
        with self.uow() as s:
            row = s.get(PartnershipValues, p.id) or PartnershipValues(partnership_id=p.id or 0, updated_by=actor)
            row.values, row.updated_by, row.updated_at = chosen or list(DEFAULT_VALUES), actor, now
            s.add(row)
            self.partnerships.audit(s, p, actor, "values_changed", values=row.values)
            shown = " ".join(f"`#{v}`" for v in row.values)
        return Outcome(f":white_check_mark: Kudos in *{escape(p.name)}* can be tagged with {shown}.", partnership=p)

    def _values(self, s: Session, partnership_id: int | None) -> list[str]:
        row = s.get(PartnershipValues, partnership_id)
        return list(row.values) if row is not None else list(DEFAULT_VALUES)

    # -- wins ----------------------------------------------------------------------------------------------------
    def wins(self, *, channel_id: str, actor: str, window: str) -> tuple[Partnership, Wins, str]:
        key = (window or DEFAULT_WINDOW).strip().lower()
        if key not in WINDOWS:
            raise Invalid(f"“{escape(key[:20])}” is not a window: use `30d`, `90d` or `all` "
                          "(`/partner wins 30d`).")
        p = self.partnerships.require_member(channel_id, actor, "see its wins").partnership
        now = self.clock.now()
        days = WINDOWS[key]
        start = now - timedelta(days=days) if days else None
        with self.uow(read_only=True) as s:
            w = self.tally(s, p.id, start, None)
        label = f"the last {days} days" if days else "since the start"
        return p, w, label

    def tally(self, s: Session, partnership_id: int | None, start: datetime | None, end: datetime | None) -> Wins:
        """Milestones reached and kudos given in [start, end) (None: open-ended)."""
        done_q = select(Milestone).where(Milestone.partnership_id == partnership_id,
                                         Milestone.status == MilestoneStatus.DONE)
        kudos_q = select(Kudos).where(Kudos.partnership_id == partnership_id)
        if end is not None:
            done_q = done_q.where(col(Milestone.done_at) < end)
            kudos_q = kudos_q.where(col(Kudos.created_at) < end)
        if start is not None:
            done_q = done_q.where(col(Milestone.done_at) >= start)
            kudos_q = kudos_q.where(col(Kudos.created_at) >= start)
        done = list(s.exec(done_q).all())
        kudos = list(s.exec(kudos_q).all())
        receivers: dict[int, list[KudosReceiver]] = {}
        if kudos:
            for r in s.exec(select(KudosReceiver).where(col(KudosReceiver.kudos_id).in_([k.id for k in kudos]))):
                receivers.setdefault(r.kudos_id, []).append(r)
        return tally_wins(done, [(k, receivers.get(k.id or 0, [])) for k in kudos])

    # -- scheduled work ----------------------------------------------------------------------------------------
    def plan(self, now: datetime | None = None) -> int:
        """Plan (idempotently) the open milestones' reminders and overdue notes, and each partnership's
        monthly recap. Writes plan them at once too; this catches what a crash between may have missed."""
        now = now or self.clock.now()
        with self.uow() as s:
            rows: list[Row] = []
            conn = s.connection()
            for m in planning_rows(conn, _PLANNED_MILESTONES):
                rows += [r for r in milestone_rows(m, m.zone, m.changed_at)
                         if r.get("not_after") is None or r["not_after"] > now]
            # A few statements for any number of milestones and partnerships: nearly every row is planned already.
            upsert_planned(s, rows, now, skip_planned=True)
            recaps: list[Row] = []
            for p in planning_rows(conn, _RECAPPED):
                recaps += recap_rows(p, now)
            insert_new(s, recaps, now, skip_planned=True)
        return len(rows) + len(recaps)

    def run_reminder(self, occ: Occurrence, ctx: RunContext) -> Completion:
        user, days = str(occ.payload["user"]), int(occ.payload["days"])
        with self.uow(read_only=True) as s:
            m = s.get(Milestone, occ.subject_id)
            p = s.get(Partnership, m.partnership_id) if m is not None else None
            if m is None or p is None or p.status != PartnershipStatus.ACTIVE:
                return Completion.obsolete("the milestone or its partnership is gone")
            if m.status != MilestoneStatus.OPEN or m.due_date.isoformat() != occ.payload.get("due") \
                    or user not in m.owners:
                if (done := ctx.unless_posted("the milestone changed since this reminder was planned")) is not None:
                    return done
            elif user not in self.people(s, p.id):
                if (done := ctx.unless_posted("the owner left the partnership's channel")) is not None:
                    return done
            name = p.name
        channel, ts = ctx.post(user, text=mblocks.reminder_text(name, m, days),
                               blocks=mblocks.due_reminder_blocks(name, m, days))
        return Completion.done(channel, ts)

    def run_overdue(self, occ: Occurrence, ctx: RunContext) -> Completion:
        with self.uow(read_only=True) as s:
            m = s.get(Milestone, occ.subject_id)
            p = s.get(Partnership, m.partnership_id) if m is not None else None
            if m is None or p is None or p.status != PartnershipStatus.ACTIVE or not p.channel_id:
                return Completion.obsolete("the milestone or its partnership is gone")
            if m.status != MilestoneStatus.OPEN or m.due_date.isoformat() != occ.payload.get("due"):
                if (done := ctx.unless_posted("the milestone was done, cancelled or rescheduled")) is not None:
                    return done
            late = max((local_date(ctx.now, p.timezone) - m.due_date).days, 1)
            channel_id = p.channel_id
        channel, ts = ctx.post(channel_id, text=mblocks.overdue_text(m, late), blocks=mblocks.overdue_blocks(m, late))
        return Completion.done(channel, ts)

    def run_post(self, occ: Occurrence, ctx: RunContext) -> Completion:
        with self.uow(read_only=True) as s:
            p = s.get(Partnership, occ.subject_id)
            if p is None or not p.channel_id or p.status != PartnershipStatus.ACTIVE:
                return Completion.obsolete("the partnership is closed")
            channel_id = p.channel_id
        blocks = occ.payload.get("blocks") or mblocks.note_blocks(str(occ.payload["text"]))
        channel, ts = ctx.post(channel_id, text=str(occ.payload["text"]), blocks=blocks)
        return Completion.done(channel, ts)

    def run_recap(self, occ: Occurrence, ctx: RunContext) -> Completion:
        with self.uow(read_only=True) as s:
            p = s.get(Partnership, occ.subject_id)
            if p is None or not p.channel_id or p.status != PartnershipStatus.ACTIVE:
                return Completion.obsolete("the partnership is closed")
            first = date.fromisoformat(str(occ.payload["month"]))
            start, end = local_day_window(first, month_start(first, 1), p.timezone)
            w = self.tally(s, p.id, start, end)
            channel_id = p.channel_id
        if w.empty:
            return Completion.skipped(f"no wins in {first:%B %Y}")
        month = first.strftime("%B %Y")
        channel, ts = ctx.post(channel_id, text=mblocks.recap_text(p.name, month),
                               blocks=mblocks.recap_blocks(p.name, w, month, p.partner_org))
        return Completion.done(channel, ts)

    def on_failure(self, s: Session, occ: Occurrence, error: str) -> None:
        """Scheduled work failed for good (inside the transaction that marks it failed): a channel that is gone
        stops the partnership's scheduling (its owners are told once); otherwise its owners are told what failed,
        at most once a day per kind of failure. A reminder to one owner that fails is only logged."""
        p = self.partnership_of(s, occ)
        if p is None or p.status != PartnershipStatus.ACTIVE or p.id is None:
            return
        if occ.kind != MILESTONE_REMIND and error in CHANNEL_GONE:
            self.partnerships.mark_channel(s, p, gone=True, error=error)
            return
        if occ.kind == MILESTONE_REMIND:
            log.warning("milestone reminder %s not delivered: %s", occ.key, error)
            return
        now = self.clock.now()
        what = {MILESTONE_OVERDUE: "post a milestone's overdue note", WINS_RECAP: "post the monthly wins recap",
                PARTNERSHIP_POST: "post a milestone or kudos message"}.get(occ.kind, "run a scheduled task")
        hint = ("Invite Partnerbot back to the channel (`/invite @Partnerbot`)." if error == "not_in_channel"
                else advice(error))
        text = (f":warning: Partnerbot could not {what} in <#{p.channel_id}> for *{escape(p.name)}* "
                f"(`{error}`). {hint}")
        scope = error if error in PERMANENT_ERRORS else f"{occ.kind}:{error}:{local_date(now, p.timezone)}"
        plan_notices(s, subject_id=p.id, people=self.partnerships.owners(s, p.id), text=text, now=now,
                     key=f"notice:{p.id}:milestones:{scope}")

    def partnership_of(self, s: Session, occ: Occurrence) -> Partnership | None:
        if KINDS[occ.kind].subject == Subject.MILESTONE:
            m = s.get(Milestone, occ.subject_id)
            return s.get(Partnership, m.partnership_id) if m is not None else None
        return s.get(Partnership, occ.subject_id)

    # -- helpers -----------------------------------------------------------------------------------------------
    def _load(self, s: Session, milestone_id: int, *, lock: bool = False) -> tuple[Milestone, Partnership]:
        m = s.get(Milestone, milestone_id, with_for_update=lock) if milestone_id else None
        p = s.get(Partnership, m.partnership_id) if m is not None else None
        if m is None or p is None:
            raise NotFound("That milestone no longer exists. `/partner milestones` lists the current ones.")
        return m, p

    def _authorize(self, s: Session, p: Partnership, m: Milestone, actor: str, what: str) -> None:
        """The partnership's owners and the milestone's own owners may change a milestone; a milestone owner only
        while still recorded in the partnership (someone removed with `/partner remove` may not, whatever buttons
        they still have)."""
        if actor in m.owners:
            self.partnerships.authorize(s, p, actor, what, need=Access.MEMBER)
            return
        try:
            self.partnerships.authorize(s, p, actor, what, need=Access.OWNER)
        except Forbidden:
            raise Forbidden(f"Only the owners of *{escape(p.name)}* and of milestone #{m.number} "
                            f"({mblocks.people(m.owners)}) can {what}; ask one of them.") from None

    def _require_open(self, m: Milestone, what: str) -> None:
        if m.status == MilestoneStatus.DONE:
            raise Invalid(f"Milestone #{m.number} is already done. An owner can reopen it with "
                          f"`/partner milestone reopen {m.number}`.")
        if m.status == MilestoneStatus.CANCELLED:
            raise Invalid(f"Milestone #{m.number} was cancelled, so you cannot {what}. Add it again if it is back.")

    def _bump(self, s: Session, m: Milestone, p: Partnership, now: datetime) -> None:
        """A change of date, owners or status: drop its pending reminders and plan the current ones at once."""
        m.version += 1
        m.changed_at = now
        s.add(m)
        s.flush()
        self._replan(s, m, p, now)

    def _replan(self, s: Session, m: Milestone, p: Partnership, now: datetime) -> None:
        assert m.id is not None
        mark_obsolete(s, kinds=[MILESTONE_REMIND, MILESTONE_OVERDUE], subject_id=m.id, now=now,
                      note="the milestone changed")
        upsert_planned(s, milestone_rows(m, p.timezone, now), now)

    def _post(self, s: Session, p: Partnership, key: str, text: str, now: datetime,
              blocks: list[dict[str, Any]] | None = None) -> None:
        """Shared news for the channel, posted once by the engine (planned in the caller's transaction)."""
        assert p.id is not None
        insert_new(s, [{"key": key, "kind": PARTNERSHIP_POST, "subject_id": p.id, "due_at": now,
                        "payload": {"text": text, "blocks": blocks or mblocks.note_blocks(text)}}], now)


def milestone_rows(m: Milestone | sa.Row[Any], zone: str, since: datetime) -> list[Row]:
    """An open milestone's occurrences: a reminder to each owner 7 days and 1 day before at 09:00 local, runnable
    until the end of that local day, and the overdue note at 09:00 the day after the due date. Keys carry the due
    date, so a reschedule plans new rows; reminders due before `since` (the change) are not planned at all."""
    if m.status != MilestoneStatus.OPEN or m.id is None:
        return []
    rows: list[Row] = []
    due = m.due_date.isoformat()
    for days in REMIND_DAYS:
        day = m.due_date - timedelta(days=days)
        at = local_to_utc(day, NINE, zone)
        if at < since:
            continue
        for user in m.owners:
            rows.append({"key": f"{MILESTONE_REMIND}:{m.id}:{due}:{days}:{user}", "kind": MILESTONE_REMIND,
                         "subject_id": m.id, "due_at": at, "not_after": end_of_local_day(day, zone),
                         "revision": m.version, "payload": {"user": user, "days": days, "due": due}})
    rows.append({"key": f"{MILESTONE_OVERDUE}:{m.id}:{due}", "kind": MILESTONE_OVERDUE, "subject_id": m.id,
                 "due_at": local_to_utc(m.due_date + timedelta(days=1), NINE, zone), "revision": m.version,
                 "payload": {"due": due}})
    return rows


@functools.lru_cache(maxsize=1024)  # pure: the planner asks it for the same months and zones for every partnership
def recap_due(month_first: date, zone: str) -> datetime:
    """When the recap of the month before `month_first`'s month is posted: its first working day, 09:00 local."""
    return local_to_utc(first_working_day(month_first.year, month_first.month), NINE, zone)


@functools.lru_cache(maxsize=256)  # pure: a planning pass asks it for every partnership with the same `now`
def _recap_months(zone: str, now: datetime) -> tuple[tuple[date, datetime, date, str], ...]:
    """The recaps runnable now or due within 2 days in `zone`: (the month's first day, when it is due, the month
    recapped, that month as in the key)."""
    this_month = month_start(local_date(now, zone))
    grace = KINDS[WINS_RECAP].policy.grace or timedelta(0)
    found = []
    for first in (this_month, month_start(this_month, 1)):
        due = recap_due(first, zone)
        if due + grace < now or due - now > timedelta(days=2):
            continue
        recapped = month_start(first, -1)
        found.append((first, due, recapped, f"{recapped:%Y-%m}"))
    return tuple(found)


def recap_rows(p: Partnership | sa.Row[Any], now: datetime) -> list[Row]:
    """This month's recap (of last month), while still runnable, and next month's once it is near. Not for months
    that ended before the partnership began."""
    rows: list[Row] = []
    for first, due, recapped, month in _recap_months(p.timezone, now):
        if local_to_utc(first, time(0, 0), p.timezone) <= p.created_at:
            continue  # the partnership began after the month recapped ended
        rows.append({"key": f"{WINS_RECAP}:{p.id}:{month}", "kind": WINS_RECAP, "subject_id": p.id,
                     "due_at": due, "payload": {"month": recapped.isoformat()}})
    return rows


def _take_value(reason: str, values: Sequence[str]) -> tuple[str, str | None]:
    """Split a `#value` tag from the partnership's values off a kudos reason (the last one given wins)."""
    found: str | None = None
    words = []
    for word in reason.split():
        tag = word.rstrip(".,;:!?")
        if tag.startswith("#") and tag[1:].lower() in values:
            found = tag[1:].lower()
            continue
        words.append(word)
    return " ".join(words).strip(), found


def parse_milestone_command(tokens: Sequence[str], user_of: Callable[[str], str | None],
                            text_of: Callable[[str], str]) -> dict[str, Any]:
    """`"<title>" <YYYY-MM-DD> [@owner ...]` split by `split_quoted`: the fields of a MilestoneInput.
    `user_of` reads a mention token, `text_of` turns Slack text back into what was typed."""
    usage = f'`/partner milestone add "Title" {DATE_FORM.split(",")[0]} [@owner …]`'
    at = next((i for i, t in enumerate(tokens) if looks_like_date(t)), None)
    if at is None:
        raise Invalid(f"Give the due date as {DATE_FORM}: {usage}. `/partner milestone add` alone opens a form.")
    title = " ".join(text_of(t) for t in tokens[:at]).strip()
    try:
        due = parse_date(tokens[at])
    except ValueError as exc:
        raise Invalid(f"{escape(str(exc))}: {usage}.") from None
    owners = []
    for token in tokens[at + 1:]:
        user = user_of(token)
        if user is None:
            raise Invalid(f"After the date come only owners, as @mentions: “{escape(text_of(token)[:40])}” is not "
                          f"one. {usage}.")
        owners.append(user)
    return {"title": title, "due_date": due, "owners": owners}

