"""Milestones and recognition with a frozen clock against the fake Slack: reminder and overdue times across
DST and month ends, what a reschedule or cancel does to pending reminders, the misfire rules, the wording
against the plan, the monthly recap's window and first working day, and the wins figures."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from blocks.milestones import against_plan
from handlers.common import plain_text, user_id_from_mention
from models import OccurrenceState, Partnership
from models.milestone import Kudos, KudosReceiver, Milestone, MilestoneStatus, tally_wins
from models.partnership import Side
from services.errors import Invalid
from services.inputs import MilestoneInput, split_quoted, validate
from services.milestones import milestone_rows, parse_milestone_command, recap_due, recap_rows
from services.recurrence import first_working_day, local_day_window, month_start
from tests.e2e.conftest import flatten
from tests.support.stack import ALICE, BOB, CAROL, PAT, Stack, stack


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)


@pytest.fixture
def st(tmp_path: Path) -> Iterator[Stack]:
    with stack(tmp_path, start=utc(2026, 3, 2, 6, 0)) as s:  # Monday 07:00 in Berlin
        yield s


def acme(st: Stack) -> Partnership:
    """Alice owns it; Bob and Carol on our side, Pat on the partner's."""
    p = st.partnership(members=[BOB, CAROL])
    assert p.channel_id
    st.services.partnerships.add_member(channel_id=p.channel_id, actor=ALICE, user_id=PAT, role=None)
    return p


def add(st: Stack, p: Partnership, due: date, owners: list[str], title: str = "Pilot live") -> int:
    inp = validate(MilestoneInput, title=title, due_date=due, owners=owners)
    st.services.milestones.add(partnership_id=p.id or 0, actor=ALICE, inp=inp)
    with st.services.uow() as s:
        return max(m.id or 0 for m in s.exec(select(Milestone)).all())


def pending(st: Stack, kind: str) -> list[tuple[str, datetime]]:
    return [(o.key, o.due_at) for o in st.occurrences(kind=kind) if o.state == OccurrenceState.PENDING]


def milestone(**kw: Any) -> Milestone:
    values: dict[str, Any] = dict(id=7, partnership_id=1, number=1, title="t", due_date=date(2026, 4, 2),
                                  original_due_date=date(2026, 4, 2), owners=["UA"], created_by="UA")
    values.update(kw)
    return Milestone(**values)


# -- times ---------------------------------------------------------------------------------------------------
def test_reminders_and_the_overdue_note_at_nine_local_across_dst() -> None:
    # Berlin springs forward on 29 March 2026: 7 days before is CET, 1 day before and the day after are CEST.
    rows = milestone_rows(milestone(), "Europe/Berlin", utc(2026, 3, 1))
    times = {(r["kind"], r["payload"].get("days")): r["due_at"] for r in rows}
    assert times[("milestone_remind", 7)] == utc(2026, 3, 26, 8, 0)
    assert times[("milestone_remind", 1)] == utc(2026, 4, 1, 7, 0)
    assert times[("milestone_overdue", None)] == utc(2026, 4, 3, 7, 0)
    # A reminder may run until its local day ends, never after.
    limits = {r["payload"].get("days"): r.get("not_after") for r in rows}
    assert limits[7] == local("Europe/Berlin", 2026, 3, 27, 0, 0) and limits[1] == utc(2026, 4, 1, 22, 0)
    assert limits[None] is None  # the overdue note is never skipped
    # New York springs forward on 8 March.
    rows = milestone_rows(milestone(due_date=date(2026, 3, 9)), "America/New_York", utc(2026, 3, 1))
    assert sorted(r["due_at"] for r in rows) == [utc(2026, 3, 2, 14, 0), utc(2026, 3, 8, 13, 0),
                                                 utc(2026, 3, 10, 13, 0)]


def test_reminders_across_month_and_year_ends() -> None:
    rows = milestone_rows(milestone(due_date=date(2026, 3, 1)), "Europe/Berlin", utc(2026, 1, 1))
    assert sorted(r["due_at"] for r in rows) == [utc(2026, 2, 22, 8, 0), utc(2026, 2, 28, 8, 0),
                                                 utc(2026, 3, 2, 8, 0)]
    rows = milestone_rows(milestone(due_date=date(2026, 12, 31)), "Asia/Tokyo", utc(2026, 1, 1))
    assert sorted(r["due_at"] for r in rows) == [utc(2026, 12, 24, 0, 0), utc(2026, 12, 30, 0, 0),
                                                 utc(2027, 1, 1, 0, 0)]


def test_reminders_already_past_when_added_are_not_planned() -> None:
    rows = milestone_rows(milestone(due_date=date(2026, 3, 5)), "Europe/Berlin", utc(2026, 3, 2, 9, 0))
    assert [(r["kind"], r["payload"].get("days")) for r in rows] == [("milestone_remind", 1),
                                                                     ("milestone_overdue", None)]
    assert milestone_rows(milestone(status=MilestoneStatus.DONE), "Europe/Berlin", utc(2026, 3, 1)) == []


def test_a_reminder_missed_while_down_is_sent_late_that_day_and_dropped_after_it(st: Stack) -> None:
    p = acme(st)
    add(st, p, date(2026, 3, 12), [BOB], "Late one")
    add(st, p, date(2026, 3, 13), [CAROL], "Dropped one")
    st.at(local("Europe/Berlin", 2026, 3, 5, 21, 0))  # the bot was down at 09:00: sent late on the same day
    assert "due in 7 days" in flatten(st.fake.dm_messages(BOB))
    st.at(local("Europe/Berlin", 2026, 3, 7, 9, 30))  # Carol's was due on the 6th: a stale reminder is dropped
    assert st.fake.dm_messages(CAROL) == []
    [dropped] = [o for o in st.occurrences(kind="milestone_remind") if "Dropped" not in o.key and CAROL in o.key
                 and o.payload["days"] == 7]
    assert dropped.state == OccurrenceState.SKIPPED
    # The overdue note is never skipped, however late.
    st.at(local("Europe/Berlin", 2026, 3, 20, 12, 0))
    notes = [flatten(m) for m in st.fake.messages(p.channel_id or "") if "is still open" in flatten(m)]
    assert len(notes) == 2 and any("8 days late" in n for n in notes) and any("7 days late" in n for n in notes)


def test_reschedule_and_cancel_drop_the_pending_reminders_and_plan_the_new_ones(st: Stack) -> None:
    p = acme(st)
    mid = add(st, p, date(2026, 3, 20), [BOB, PAT])
    assert len(pending(st, "milestone_remind")) == 4 and len(pending(st, "milestone_overdue")) == 1
    svc = st.services.milestones
    svc.reschedule(milestone_id=mid, actor=BOB, due=date(2026, 4, 2))
    keys = [k for k, _ in pending(st, "milestone_remind")]
    assert len(keys) == 4 and all(":2026-04-02:" in k for k in keys)
    assert [k for k, _ in pending(st, "milestone_overdue")] == [f"milestone_overdue:{mid}:2026-04-02"]
    old = [o for o in st.occurrences(kind="milestone_remind") if ":2026-03-20:" in o.key]
    assert {o.state for o in old} == {OccurrenceState.OBSOLETE}
    # Back to the first date: its reminders are planned again (a newer revision), the others dropped.
    svc.reschedule(milestone_id=mid, actor=ALICE, due=date(2026, 3, 20))
    assert all(":2026-03-20:" in k for k, _ in pending(st, "milestone_remind"))
    # The owners change: the reminders follow them.
    with st.services.uow() as s:
        m = s.get(Milestone, mid)
        assert m is not None and m.original_due_date == date(2026, 3, 20)
        inp = validate(MilestoneInput, title=m.title, due_date=m.due_date, owners=[CAROL])
    svc.edit(milestone_id=mid, actor=ALICE, inp=inp)
    assert {k.rsplit(":", 1)[1] for k, _ in pending(st, "milestone_remind")} == {CAROL}
    svc.cancel(milestone_id=mid, actor=ALICE)
    assert pending(st, "milestone_remind") == [] and pending(st, "milestone_overdue") == []
    st.at(local("Europe/Berlin", 2026, 3, 21, 9, 0))
    assert st.fake.dm_messages(CAROL) == []
    texts = [flatten(m) for m in st.fake.messages(p.channel_id or "")]
    assert any("cancelled milestone #1" in t for t in texts) and not any("still open" in t for t in texts)
    with pytest.raises(Invalid, match="was cancelled"):
        svc.reschedule(milestone_id=mid, actor=ALICE, due=date(2026, 4, 9))


def test_a_celebration_whose_post_fails_is_retried_and_the_milestone_counts_as_done(st: Stack) -> None:
    p = acme(st)
    mid = add(st, p, date(2026, 3, 20), [BOB])
    st.tick()
    st.fake.fail("chat.postMessage", "internal_error", status=500, times=2)
    st.services.milestones.mark_done(milestone_id=mid, actor=BOB, contributors=[BOB, PAT], note="shipped")
    st.tick()
    with st.services.uow() as s:
        m = s.get(Milestone, mid)
        assert m is not None and m.status == MilestoneStatus.DONE and m.done_on == date(2026, 3, 2)
    st.at(st.clock.now() + timedelta(minutes=5))
    st.at(st.clock.now() + timedelta(minutes=5))
    celebrations = [m for m in st.fake.messages(p.channel_id or "") if "Milestone reached" in flatten(m)]
    assert len(celebrations) == 1 and "18 days early" in flatten(celebrations[0])
    with pytest.raises(Invalid, match="already marked done"):
        st.services.milestones.mark_done(milestone_id=mid, actor=ALICE, contributors=[BOB], note="")


def test_dates_in_the_past_and_owners_outside_are_refused(st: Stack) -> None:
    p = acme(st)
    svc = st.services.milestones
    with pytest.raises(Invalid, match="in the past") as err:
        svc.add(partnership_id=p.id or 0, actor=ALICE,
                inp=validate(MilestoneInput, title="x", due_date=date(2026, 3, 1)))
    assert "due_date" in err.value.fields
    with pytest.raises(Invalid, match="not in"):
        svc.add(partnership_id=p.id or 0, actor=ALICE,
                inp=validate(MilestoneInput, title="x", due_date=date(2026, 3, 2), owners=["UDAN"]))
    with pytest.raises(Invalid, match="limit is 150"):
        validate(MilestoneInput, title="é" * 151, due_date="2026-03-03")
    with pytest.raises(Invalid, match="not a date: use YYYY-MM-DD"):
        validate(MilestoneInput, title="x", due_date="2026-02-30")


# -- wording and parsing ---------------------------------------------------------------------------------------
def test_how_it_went_against_the_plan() -> None:
    due = date(2026, 3, 20)
    assert against_plan(due, date(2026, 3, 17)) == "3 days early"
    assert against_plan(due, date(2026, 3, 19)) == "1 day early"
    assert against_plan(due, due) == "on the day"
    assert against_plan(due, date(2026, 3, 21)) == "1 day late"
    assert against_plan(due, date(2026, 3, 25)) == "5 days late"
    assert against_plan(date(2026, 2, 27), date(2026, 3, 2)) == "3 days late"  # across a month end


def test_the_add_command_reads_straight_and_curly_quotes() -> None:
    def parse(text: str) -> dict[str, Any]:
        return parse_milestone_command(split_quoted(text), user_id_from_mention, plain_text)

    assert parse('"Pilot live" 2026-03-20 <@UBOB|bob>') == {"title": "Pilot live", "due_date": date(2026, 3, 20),
                                                             "owners": ["UBOB"]}
    assert parse("\u201cContract signed\u201d 2026-3-5 <@UA> <@UB|b>")["owners"] == ["UA", "UB"]
    assert parse("Launch the pilot 2026-03-20")["title"] == "Launch the pilot"
    assert parse('"Release 2026-04-01" 2026-04-01')["title"] == "Release 2026-04-01"
    with pytest.raises(Invalid, match="YYYY-MM-DD"):
        parse('"Pilot" next friday')
    with pytest.raises(Invalid, match="not a date"):
        parse('"Pilot" 2026-13-01')
    with pytest.raises(Invalid, match="only owners"):
        parse('"Pilot" 2026-03-20 bob')


# -- the monthly recap ---------------------------------------------------------------------------------------------
def test_first_working_day_and_the_recap_window() -> None:
    assert first_working_day(2026, 3) == date(2026, 3, 2)  # 1 March is a Sunday
    assert first_working_day(2026, 8) == date(2026, 8, 3)  # 1 August is a Saturday
    assert first_working_day(2026, 4) == date(2026, 4, 1)
    assert month_start(date(2026, 1, 15), -1) == date(2025, 12, 1)
    assert month_start(date(2026, 12, 15), 1) == date(2027, 1, 1)
    # 09:00 local across DST: CET on 2 March, CEST on 1 April.
    assert recap_due(date(2026, 3, 1), "Europe/Berlin") == utc(2026, 3, 2, 8, 0)
    assert recap_due(date(2026, 4, 1), "Europe/Berlin") == utc(2026, 4, 1, 7, 0)
    # February in Berlin: from its first local midnight to March's.
    assert local_day_window(date(2026, 2, 1), date(2026, 3, 1), "Europe/Berlin") == (
        utc(2026, 1, 31, 23, 0), utc(2026, 2, 28, 23, 0))


def test_recap_rows_are_planned_near_their_day_and_not_for_months_before_the_partnership() -> None:
    p = Partnership(id=3, name="x", timezone="Europe/Berlin", created_by="UA", created_at=utc(2026, 1, 10))
    [row] = recap_rows(p, utc(2026, 3, 1, 12, 0))  # next is Monday 2 March
    assert row["key"] == "wins_recap:3:2026-02" and row["due_at"] == utc(2026, 3, 2, 8, 0)
    assert recap_rows(p, utc(2026, 3, 10, 12, 0)) == []  # past its grace, and April's is far off
    young = Partnership(id=4, name="y", timezone="Europe/Berlin", created_by="UA", created_at=utc(2026, 3, 1, 10))
    assert recap_rows(young, utc(2026, 3, 1, 12, 0)) == []  # began after February ended


def test_the_recap_counts_the_local_month(st: Stack) -> None:
    st.clock.set(utc(2026, 2, 10, 9, 0))
    p = acme(st)
    svc = st.services.milestones
    st.clock.set(local("Europe/Berlin", 2026, 2, 28, 23, 30))  # still February in Berlin (22:30 UTC)
    svc.kudos(channel_id=p.channel_id or "", actor=BOB, receivers=[PAT], reason="late night fix")
    st.clock.set(local("Europe/Berlin", 2026, 3, 1, 0, 30))  # March in Berlin, still February in UTC
    svc.kudos(channel_id=p.channel_id or "", actor=PAT, receivers=[CAROL], reason="early bird")
    st.at(local("Europe/Berlin", 2026, 3, 2, 9, 0))
    [recap] = [flatten(m) for m in st.fake.messages(p.channel_id or "") if "February 2026 wins" in flatten(m)]
    assert "*Kudos:* 1 (100% across organizations)" in recap and f"<@{PAT}> (1)" in recap
    assert f"<@{CAROL}>" not in recap


# -- wins --------------------------------------------------------------------------------------------------------
def test_wins_figures() -> None:
    done = [milestone(id=1, due_date=date(2026, 3, 20), done_on=date(2026, 3, 17)),
            milestone(id=2, due_date=date(2026, 3, 20), done_on=date(2026, 3, 20)),
            milestone(id=3, due_date=date(2026, 3, 20), done_on=date(2026, 3, 23))]

    def k(giver: str, side: Side, cross: bool, *receivers: tuple[str, Side]) -> tuple[Kudos, list[KudosReceiver]]:
        kudos = Kudos(partnership_id=1, giver=giver, giver_side=side, reason="r", cross_org=cross)
        return kudos, [KudosReceiver(kudos_id=0, user_id=u, side=s) for u, s in receivers]

    w = tally_wins(done, [
        k("UA", Side.OURS, True, ("UP", Side.PARTNER), ("UB", Side.OURS)),
        k("UB", Side.OURS, True, ("UP", Side.PARTNER)),
        k("UP", Side.PARTNER, True, ("UB", Side.OURS)),
        k("UC", Side.OURS, False, ("UB", Side.OURS)),
    ])
    assert (w.reached, w.on_time, round(w.on_time_share or 0, 2)) == (3, 2, 0.67)
    assert (w.kudos, w.cross_org, w.cross_share) == (4, 3, 0.75)
    assert w.given == {"UA": 1, "UB": 1, "UP": 1, "UC": 1}
    assert w.received == {"UP": 2, "UB": 3}
    assert w.given_by_side == {Side.OURS: 3, Side.PARTNER: 1}
    assert w.received_by_side == {Side.PARTNER: 2, Side.OURS: 3}
    assert w.most_thanked(Side.OURS) == [("UB", 3)] and w.most_thanked(Side.PARTNER) == [("UP", 2)]
    empty = tally_wins([], [])
    assert empty.empty and empty.on_time_share is None and empty.cross_share is None


def test_the_planner_restores_what_a_write_planned(st: Stack) -> None:
    p = acme(st)
    add(st, p, date(2026, 3, 20), [BOB])
    planned = {o.key: o.due_at for o in st.occurrences() if o.kind.startswith("milestone_")}
    with st.services.uow() as s:
        for o in st.occurrences():
            if o.kind.startswith("milestone_"):
                s.delete(s.merge(o))
    assert st.services.milestones.plan(st.clock.now()) >= len(planned)
    assert {o.key: o.due_at for o in st.occurrences() if o.kind.startswith("milestone_")} == planned


def test_two_mark_done_submissions_at_once_celebrate_once(st: Stack) -> None:
    p = acme(st)
    mid = add(st, p, date(2026, 3, 20), [])  # no owners given: whoever added it owns it
    with st.services.uow() as s:
        m = s.get(Milestone, mid)
        assert m is not None and m.owners == [ALICE]
    outcomes: list[str] = []

    def submit(user: str) -> None:
        try:
            st.services.milestones.mark_done(milestone_id=mid, actor=user, contributors=[BOB, PAT], note="n")
            outcomes.append("done")
        except Invalid as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=submit, args=(ALICE,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("done") == 1 and sum("already marked done" in o for o in outcomes) == 3
    st.tick()
    assert len([m for m in st.fake.messages(p.channel_id or "") if "Milestone reached" in flatten(m)]) == 1


def test_people_who_left_the_channel_are_not_named_but_keep_their_side_in_the_figures(st: Stack) -> None:
    p = acme(st)
    svc = st.services.milestones
    svc.kudos(channel_id=p.channel_id or "", actor=BOB, receivers=[PAT], reason="before leaving")
    st.services.partnerships.member_left(channel_id=p.channel_id or "", user_id=PAT, at=st.clock.now())
    with pytest.raises(Invalid, match="not in"):
        svc.kudos(channel_id=p.channel_id or "", actor=BOB, receivers=[PAT], reason="after leaving")
    with pytest.raises(Invalid, match="not in"):
        svc.add(partnership_id=p.id or 0, actor=ALICE,
                inp=validate(MilestoneInput, title="x", due_date=date(2026, 3, 9), owners=[PAT]))
    _, w, _ = svc.wins(channel_id=p.channel_id or "", actor=ALICE, window="all")
    assert w.received == {PAT: 1} and w.received_by_side == {Side.PARTNER: 1} and w.cross_org == 1


def test_an_owner_who_left_stays_on_an_edit_and_can_be_credited(st: Stack) -> None:
    p = acme(st)
    svc = st.services.milestones
    mid = add(st, p, date(2026, 3, 20), [BOB, PAT])
    st.services.partnerships.member_left(channel_id=p.channel_id or "", user_id=PAT, at=st.clock.now())
    svc.check_input(partnership_id=p.id or 0, actor=ALICE, milestone_id=mid,
                    inp=validate(MilestoneInput, title="Renamed", due_date=date(2026, 3, 20), owners=[BOB, PAT]))
    svc.edit(milestone_id=mid, actor=ALICE,
             inp=validate(MilestoneInput, title="Renamed", due_date=date(2026, 3, 20), owners=[BOB, PAT]))
    st.at(local("Europe/Berlin", 2026, 3, 13, 9, 0))  # only owners still in the channel are reminded
    assert "due in 7 days" in flatten(st.fake.dm_messages(BOB)) and st.fake.dm_messages(PAT) == []
    svc.mark_done(milestone_id=mid, actor=BOB, contributors=[BOB, PAT], note="")
    with st.services.uow() as s:
        m = s.get(Milestone, mid)
        assert m is not None and m.contributors == [{"user": BOB, "side": "ours"}, {"user": PAT, "side": "partner"}]


def channel_texts(st: Stack, p: Partnership) -> list[str]:
    return [flatten(m) for m in st.fake.messages(p.channel_id or "")]


def test_reopening_weeks_after_the_due_date_says_how_late_it_is_once(st: Stack) -> None:
    p = acme(st)
    svc = st.services.milestones
    mid = add(st, p, date(2026, 3, 10), [BOB])  # a Tuesday
    svc.mark_done(milestone_id=mid, actor=BOB, contributors=[BOB], note="")
    st.tick()
    st.at(local("Europe/Berlin", 2026, 4, 20, 10, 0))  # 41 days after the due date
    said = svc.reopen(milestone_id=mid, actor=ALICE).text()
    assert "Reopened milestone #1 *Pilot live*; it was due Tue 10 Mar, 41 days ago." in said
    st.tick()
    assert any(f"<@{ALICE}> reopened milestone #1 *Pilot live*; it was due Tue 10 Mar, 41 days ago." in t
               for t in channel_texts(st, p))
    st.at(local("Europe/Berlin", 2026, 4, 21, 10, 0))
    st.services.milestones.plan(st.clock.now())  # the planner does not bring the note back either
    st.at(local("Europe/Berlin", 2026, 4, 22, 10, 0))
    assert not [t for t in channel_texts(st, p) if "is still open" in t]


def test_reopening_before_the_due_date_brings_back_the_reminders_and_the_overdue_note(st: Stack) -> None:
    p = acme(st)
    svc = st.services.milestones
    mid = add(st, p, date(2026, 3, 20), [BOB])
    svc.mark_done(milestone_id=mid, actor=BOB, contributors=[BOB], note="")
    st.at(local("Europe/Berlin", 2026, 3, 4, 10, 0))
    assert "it is due Fri 20 Mar" in svc.reopen(milestone_id=mid, actor=ALICE).text()
    # Planned at once, in the reopen's transaction (not only when the planner next runs).
    assert [k for k, _ in pending(st, "milestone_remind")] == [f"milestone_remind:{mid}:2026-03-20:{n}:{BOB}"
                                                               for n in (7, 1)]
    assert [k for k, _ in pending(st, "milestone_overdue")] == [f"milestone_overdue:{mid}:2026-03-20"]
    st.at(local("Europe/Berlin", 2026, 3, 13, 9, 0))
    assert "due in 7 days, on Fri 20 Mar" in flatten(st.fake.dm_messages(BOB))
    st.at(local("Europe/Berlin", 2026, 3, 21, 9, 0))
    [note] = [t for t in channel_texts(st, p) if "is still open" in t]
    assert "1 day late" in note


def test_saving_an_edit_wakes_the_scheduler(st: Stack) -> None:
    p = acme(st)
    svc = st.services.milestones
    mid = add(st, p, date(2026, 3, 20), [BOB])
    woken: list[bool] = []
    svc.wake = lambda: woken.append(True)
    svc.edit(milestone_id=mid, actor=ALICE,
             inp=validate(MilestoneInput, title="Pilot live", due_date=date(2026, 3, 20), owners=[CAROL]))
    assert woken == [True]


def test_a_reminder_is_not_sent_when_the_milestone_changed_after_it_was_planned(st: Stack) -> None:
    # A change that commits while a reminder is already claimed is not re-planned in time: the reminder looks again.
    p = acme(st)
    ids_ = [add(st, p, date(2026, 3, 20), [BOB], title) for title in ("Owner changed", "Moved", "Done", "Kept")]
    with st.services.uow() as s:
        for mid, change in zip(ids_, ("owners", "due", "status", None), strict=True):
            m = s.get(Milestone, mid)
            assert m is not None
            if change == "owners":
                m.owners = [CAROL]
            elif change == "due":
                m.due_date = date(2026, 3, 27)
            elif change == "status":
                m.status = MilestoneStatus.DONE
            s.add(m)
    st.at(local("Europe/Berlin", 2026, 3, 13, 9, 0))
    texts = [flatten(m) for m in st.fake.dm_messages(BOB)]
    assert len(texts) == 1 and "*Kept*" in texts[0]  # Carol, the new owner, is reminded by the planner's rows


def test_wins_count_the_last_90_days_by_default(st: Stack) -> None:
    p = acme(st)
    svc = st.services.milestones
    svc.kudos(channel_id=p.channel_id or "", actor=BOB, receivers=[PAT], reason="early help")
    st.clock.set(st.clock.now() + timedelta(days=60))
    svc.kudos(channel_id=p.channel_id or "", actor=BOB, receivers=[CAROL], reason="later help")
    st.clock.set(st.clock.now() + timedelta(days=31))  # the first kudos are 91 days old, the second 31
    _, w, label = svc.wins(channel_id=p.channel_id or "", actor=ALICE, window="")
    assert label == "the last 90 days" and w.kudos == 1 and w.received == {CAROL: 1}
    _, w, _ = svc.wins(channel_id=p.channel_id or "", actor=ALICE, window="all")
    assert w.kudos == 2
