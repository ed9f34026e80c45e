"""The issue log with a frozen clock against the fake Slack: the state machine, the SLA rules on issues (business
hours across a weekend and a DST change, pause and resume, reopen), each ladder level exactly once, timers
cancelled on acknowledge and resolve, a restart past a deadline (the escalation happens once, late), due-date
reminders, changed SLA settings, and the figures."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

import services.issues as issues_module
from models import Occurrence, OccurrenceState, Partnership
from models.issue import Issue, IssueEvent, IssueSlaSettings, IssueStatus
from models.partnership import Role, Side
from services.errors import Forbidden, Invalid
from services.inputs import IssueInput, validate
from services.issues import (
    ACTIONS,
    ack_clock,
    clock_of,
    hours_of,
    next_level,
    resolve_clock,
    sla_rows,
    transition,
)
from services.scheduling import ISSUE_DUE, ISSUE_SLA
from services.sla import WorkingHours, format_left, ladder
from tests.e2e.conftest import flatten
from tests.support.stack import ALICE, BOB, CAROL, DAN, PAT, Stack, stack

BERLIN = "Europe/Berlin"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(BERLIN)).astimezone(UTC)


@pytest.fixture
def st(tmp_path: Path) -> Iterator[Stack]:
    with stack(tmp_path, start=berlin(2026, 3, 2, 10, 0)) as s:  # Monday 10:00 in Berlin
        yield s


def acme(st: Stack, *, sponsor: bool = True) -> Partnership:
    """Alice owns it; Bob and Carol on our side, Pat on the partner's, Dan a sponsor."""
    p = st.partnership(members=[BOB, CAROL])
    assert p.channel_id
    st.services.partnerships.add_member(channel_id=p.channel_id, actor=ALICE, user_id=PAT, role=None)
    if sponsor:
        st.services.partnerships.add_member(channel_id=p.channel_id, actor=ALICE, user_id=DAN, role=Role.SPONSOR)
    return p


def log(st: Stack, p: Partnership, title: str = "Payments down", *, severity: str = "critical", key: str = "k1",
        owners: tuple[str | None, str | None] = (BOB, PAT), due: date | None = None, actor: str = CAROL) -> Issue:
    inp = validate(IssueInput, title=title, severity=severity, owner_ours=owners[0], owner_partner=owners[1],
                   due_date=due)
    st.services.issues.log(partnership_id=p.id or 0, actor=actor, inp=inp, creation_key=key)
    return issue(st, key)


def issue(st: Stack, key: str = "k1") -> Issue:
    with st.services.uow() as s:
        found = s.exec(select(Issue).where(Issue.creation_key == key)).one()
        s.expunge(found)
        return found


def pending(st: Stack, kind: str = ISSUE_SLA) -> dict[str, datetime]:
    return {o.key: o.due_at for o in st.occurrences(kind=kind) if o.state == OccurrenceState.PENDING}


def ladder_of(st: Stack, i: Issue, clock: str = "resolve") -> dict[str, datetime]:
    """The moments of the clock's ladder as the issue stands now ({} unless it runs), after checking that the issue
    has its one SLA timer planned: the earliest next level of its running clocks."""
    with st.services.uow() as s:
        row = s.get(Issue, i.id)
        assert row is not None
        p = s.get(Partnership, row.partnership_id)
        assert p is not None
        hours = hours_of(s.get(IssueSlaSettings, p.id))
        moments = {lvl.value: at for lvl, at in ladder(clock_of(row, clock), p.timezone, hours)}
        expected = next_level(row, p.timezone, hours)
    planned = {k: v for k, v in pending(st).items() if k.startswith(f"issue_sla:{i.id}:")}
    assert planned == ({expected["key"]: expected["due_at"]} if expected else {})
    return moments


def set_sla(st: Stack, p: Partnership, *, critical: tuple[str, str] = ("1h", "1 day"), business_hours: bool) -> None:
    """Alice saves the partnership's SLA settings: these critical targets, the defaults' others, Mon-Fri 09-17."""
    svc = st.services.issues
    targets, _ = svc.parse_sla({"critical": critical, "high": ("4h", "3d"), "normal": ("1 day", "7 days"),
                                "low": ("3 days", "30 days")}, business_hours, "mon-fri", "09:00", "17:00")
    svc.save_sla(partnership_id=p.id or 0, actor=ALICE, targets=targets, business_hours=business_hours,
                 days="mon-fri", start="09:00", end="17:00")


def dms(st: Stack, user: str, text: str) -> list[str]:
    return [flatten(m) for m in st.fake.dm_messages(user) if text in flatten(m)]


# -- the state machine, pure ------------------------------------------------------------------------------------------
def bare(now: datetime) -> Issue:
    return Issue(id=1, partnership_id=1, number=7, title="t", severity="high", reporter=ALICE, channel_id="C1",
                 ack_target_s=4 * 3600, res_target_s=3 * 86400, ack_running_since=now, res_running_since=now,
                 created_at=now)


def test_state_machine_moves_the_clocks() -> None:
    t0 = utc(2026, 3, 2, 9, 0)
    i = bare(t0)
    transition(i, "acknowledge", t0 + timedelta(hours=1), BERLIN, None)
    assert i.status == IssueStatus.ACKNOWLEDGED and i.acknowledged_in_time is True
    assert ack_clock(i).stopped_at == t0 + timedelta(hours=1) and resolve_clock(i).running
    with pytest.raises(Invalid, match="#7 is acknowledged, so you cannot acknowledge it"):
        transition(i, "acknowledge", t0, BERLIN, None)
    transition(i, "wait", t0 + timedelta(hours=2), BERLIN, None)
    assert i.status == IssueStatus.WAITING and resolve_clock(i).paused
    assert resolve_clock(i).consumed == timedelta(hours=2)
    transition(i, "resume", t0 + timedelta(days=5), BERLIN, None)  # five days waiting do not count
    assert resolve_clock(i).left(t0 + timedelta(days=5), BERLIN, None) == timedelta(days=3, hours=-2)
    transition(i, "resolve", t0 + timedelta(days=5, hours=1), BERLIN, None)
    assert i.status == IssueStatus.RESOLVED and i.resolved_in_time is True
    with pytest.raises(Invalid, match="already resolved"):
        transition(i, "wait", t0, BERLIN, None)
    transition(i, "reopen", t0 + timedelta(days=6), BERLIN, None)
    assert i.status == IssueStatus.ACKNOWLEDGED and i.res_run == 2 and i.resolved_in_time is None
    assert resolve_clock(i).left(t0 + timedelta(days=6), BERLIN, None) == timedelta(days=3)  # a new clock
    with pytest.raises(Invalid, match="nothing to reopen"):
        transition(i, "reopen", t0, BERLIN, None)
    assert set(ACTIONS) == {"acknowledge", "assign", "wait", "resume", "resolve", "reopen", "escalate", "edit"}


def test_waiting_on_an_open_issue_acknowledges_it_and_resolving_late_counts_late() -> None:
    t0 = utc(2026, 3, 2, 9, 0)
    i = bare(t0)
    transition(i, "wait", t0 + timedelta(hours=5), BERLIN, None)
    assert i.acknowledged_in_time is False and ack_clock(i).stopped_at is not None
    transition(i, "resume", t0 + timedelta(hours=6), BERLIN, None)
    transition(i, "resolve", t0 + timedelta(days=4), BERLIN, None)
    assert i.resolved_in_time is False  # 4 days minus an hour waiting: over the 3-day target


def test_business_hours_timers_across_a_weekend_and_a_dst_change() -> None:
    # Friday 27 March 2026 16:00 in Berlin; the clocks change on Sunday 29 March. 4 h of business hours: Monday
    # 12:00 local, which is 10:00 UTC after the change (it was UTC+1 on Friday, UTC+2 on Monday).
    # Only each running clock's next level is planned: the issue records how far up its ladder each run is.
    t0 = berlin(2026, 3, 27, 16, 0)
    i = bare(t0)

    def ack_rows(hours: WorkingHours | None) -> dict[str, datetime]:
        return {r["key"]: r["due_at"] for r in sla_rows(i, BERLIN, hours) if ":ack:" in r["key"]}

    assert ack_rows(WorkingHours()) == {"issue_sla:1:ack:1:warn": berlin(2026, 3, 30, 11, 12)}  # 80 %: 3 h 12 min
    i.ack_reached = 1
    assert ack_rows(WorkingHours()) == {"issue_sla:1:ack:1:breach": utc(2026, 3, 30, 10, 0)}
    i.ack_reached = 2
    assert ack_rows(WorkingHours()) == {"issue_sla:1:ack:1:escalate": berlin(2026, 3, 30, 16, 0)}
    i.ack_reached = 3
    assert ack_rows(WorkingHours()) == {}  # the top of the ladder
    # Without business hours: every minute counts.
    i.ack_reached = 1
    assert ack_rows(None) == {"issue_sla:1:ack:1:breach": berlin(2026, 3, 27, 20, 0)}


# -- on the engine -------------------------------------------------------------------------------------------------
def test_each_level_fires_once_and_acknowledging_cancels_the_rest(st: Stack) -> None:
    p = acme(st)
    t0 = st.clock.now()
    i = log(st, p)
    # One timer per issue: the earliest next level of its running clocks, the acknowledge clock's 80 % reminder.
    assert set(pending(st)) == {f"issue_sla:{i.id}:ack:1:warn"}
    st.at(t0 + timedelta(minutes=48))
    assert pending(st)[f"issue_sla:{i.id}:ack:1:breach"] == t0 + timedelta(hours=1)  # planned by the reminder
    st.at(t0 + timedelta(minutes=50))
    assert [len(dms(st, u, "to acknowledge it")) for u in (BOB, PAT, ALICE)] == [1, 1, 0]
    st.at(t0 + timedelta(hours=1))
    assert pending(st)[f"issue_sla:{i.id}:ack:1:escalate"] == t0 + timedelta(hours=2)  # planned by the breach
    st.at(t0 + timedelta(hours=1, minutes=1))
    assert [len(dms(st, u, "was not acknowledged within 1 h")) for u in (BOB, PAT, ALICE, DAN)] == [1, 1, 1, 0]
    assert issue(st).ack_reached == 2
    st.services.issues.acknowledge(issue_id=i.id or 0, actor=BOB)
    # The acknowledge clock's escalation is cancelled; the resolve clock's ladder stays.
    assert set(pending(st)) == {f"issue_sla:{i.id}:resolve:1:warn"}
    st.at(t0 + timedelta(hours=3))
    assert dms(st, DAN, "Escalation") == []
    st.services.issues.resolve(issue_id=i.id or 0, actor=PAT, note="Restarted the gateway")
    assert pending(st) == {}  # a resolved issue gets no reminder
    st.at(t0 + timedelta(days=3))
    assert dms(st, BOB, "to resolve it") == []


def test_both_ladders_climb_each_level_once_when_their_levels_interleave(st: Stack) -> None:
    p = acme(st)
    set_sla(st, p, critical=("10h", "1 day"), business_hours=False)
    t0 = st.clock.now()
    i = log(st, p)  # acknowledge: 8 h, 10 h, 20 h; resolve: 19.2 h, 24 h, 48 h
    moments = [(8, "ack", "warn"), (10, "ack", "breach"), (19.2, "resolve", "warn"), (20, "ack", "escalate"),
               (24, "resolve", "breach"), (48, "resolve", "escalate")]
    for hours, clock, level in moments:
        assert set(pending(st)) == {f"issue_sla:{i.id}:{clock}:1:{level}"}
        st.at(t0 + timedelta(hours=hours))
    assert pending(st) == {}  # both ladders are at the top
    st.at(t0 + timedelta(days=5))
    assert [len(dms(st, BOB, text)) for text in ("to acknowledge it", "was not acknowledged within 10 h",
                                                  "to resolve it", "was not resolved within 1 day")] == [1, 1, 1, 1]
    assert len(dms(st, DAN, "Escalation in *Acme*")) == 2  # one per clock
    assert (issue(st).ack_reached, issue(st).res_reached) == (3, 3)


def test_pause_and_resume_move_the_resolve_ladder_and_reopen_starts_a_new_run(st: Stack) -> None:
    p = acme(st)
    t0 = st.clock.now()
    i = log(st, p, severity="normal")  # 1 day / 7 days
    st.services.issues.wait(issue_id=i.id or 0, actor=BOB)
    assert pending(st) == {}  # paused: no timer runs
    st.clock.set(t0 + timedelta(days=2))
    st.services.issues.resume(issue_id=i.id or 0, actor=PAT)
    assert ladder_of(st, i)["breach"] == t0 + timedelta(days=9)
    st.clock.set(t0 + timedelta(days=3))
    st.services.issues.resolve(issue_id=i.id or 0, actor=BOB, note="done")
    st.clock.set(t0 + timedelta(days=4))
    st.services.issues.reopen(issue_id=i.id or 0, actor=CAROL)  # Carol reported it
    assert ladder_of(st, i) == {lvl: t0 + timedelta(days=4) + timedelta(days=7) * f
                                for lvl, f in (("warn", 0.8), ("breach", 1.0), ("escalate", 2.0))}
    assert set(pending(st)) == {f"issue_sla:{i.id}:resolve:2:warn"}  # a new run starts at the bottom


def test_a_pause_keeps_the_levels_reached_and_the_resume_plans_the_next(st: Stack) -> None:
    p = acme(st)
    t0 = st.clock.now()
    i = log(st, p, severity="normal")  # 1 day / 7 days
    st.services.issues.acknowledge(issue_id=i.id or 0, actor=BOB)
    st.at(t0 + timedelta(days=5, hours=15))  # 80 % of 7 days: 5 days 14.4 h
    assert len(dms(st, BOB, "to resolve it")) == 1
    assert set(pending(st)) == {f"issue_sla:{i.id}:resolve:1:breach"}
    st.services.issues.wait(issue_id=i.id or 0, actor=BOB)
    assert pending(st) == {}
    st.clock.set(t0 + timedelta(days=10))
    st.services.issues.resume(issue_id=i.id or 0, actor=PAT)
    # 5 days 15 h used: the breach is 1 day 9 h after the resume; the 80 % reminder is not sent again.
    assert ladder_of(st, i)["breach"] == t0 + timedelta(days=11, hours=9)
    assert set(pending(st)) == {f"issue_sla:{i.id}:resolve:1:breach"}
    st.at(t0 + timedelta(days=11, hours=9))
    assert len(dms(st, BOB, "to resolve it")) == 1 and len(dms(st, BOB, "was not resolved within 7 days")) == 1


def test_a_pause_while_slack_is_asked_for_the_link_lets_the_due_level_out_and_keeps_the_ladder(
    st: Stack, monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = acme(st)
    t0 = st.clock.now()
    i = log(st, p, severity="normal")
    st.services.issues.acknowledge(issue_id=i.id or 0, actor=BOB)
    st.tick()  # the card is posted: the reminder asks Slack for its link
    svc = st.services.issues
    link = svc._link

    def link_then_paused(issue: Issue, slack: object = None) -> str | None:
        svc.wait(issue_id=issue.id or 0, actor=BOB)  # meanwhile someone marks it waiting on the partner
        return link(issue)

    monkeypatch.setattr(svc, "_link", link_then_paused)
    st.at(t0 + timedelta(days=5, hours=15))
    monkeypatch.setattr(svc, "_link", link)
    assert len(dms(st, BOB, "to resolve it")) == 1  # it was due before the pause: it goes out, once
    assert issue(st).status == IssueStatus.WAITING and pending(st) == {}
    st.clock.set(t0 + timedelta(days=6))
    st.services.issues.resume(issue_id=i.id or 0, actor=BOB)
    assert set(pending(st)) == {f"issue_sla:{i.id}:resolve:1:breach"}  # not the reminder again
    st.at(t0 + timedelta(days=8))
    assert len(dms(st, BOB, "to resolve it")) == 1 and len(dms(st, BOB, "was not resolved within 7 days")) == 1


def test_a_level_that_fails_for_good_does_not_stop_the_ladder(st: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    p = acme(st)
    t0 = st.clock.now()
    i = log(st, p, severity="normal")  # acknowledge within 1 day: the 80 % reminder after 19.2 h
    st.tick()
    svc = st.services.issues
    link = svc._link

    def broken(issue: Issue, slack: object = None) -> str | None:
        raise RuntimeError("the reminder breaks")

    monkeypatch.setattr(svc, "_link", broken)
    for minutes in range(0, 8 * 11, 11):  # eight attempts, 11 minutes apart (past every backoff)
        st.at(t0 + timedelta(hours=19, minutes=12 + minutes))
    monkeypatch.setattr(svc, "_link", link)
    failed = [o for o in st.occurrences(kind=ISSUE_SLA) if o.state == OccurrenceState.FAILED]
    assert [o.key for o in failed] == [f"issue_sla:{i.id}:ack:1:warn"]
    assert dms(st, BOB, "to acknowledge it") == []
    # The reminder gave up; the ladder goes on: the breach is planned, and goes out once.
    assert issue(st).ack_reached == 1
    assert pending(st)[f"issue_sla:{i.id}:ack:1:breach"] == t0 + timedelta(days=1)
    st.at(t0 + timedelta(days=1))
    assert len(dms(st, BOB, "was not acknowledged within 1 day")) == 1


def test_a_restart_past_a_deadline_escalates_once_late(st: Stack) -> None:
    p = acme(st)
    t0 = st.clock.now()
    log(st, p)
    st.tick()
    st.restart()  # the bot is down for five hours: past the warning, the breach and the escalation
    st.at(t0 + timedelta(hours=5))
    st.tick()
    assert len(dms(st, DAN, "Escalation in *Acme*")) == 1
    assert len(dms(st, PAT, "Escalation in *Acme*")) == 1  # the partner's side has no sponsor: its contact
    assert [len(dms(st, u, ":rotating_light: #1 was not acknowledged within 1 h")) for u in (BOB, PAT, ALICE)] == [
        1, 1, 1]
    assert dms(st, BOB, "to acknowledge it") == []  # no stale 80 % reminder after (or before) the breach
    st.restart()
    st.at(t0 + timedelta(hours=6))
    assert len(dms(st, DAN, "Escalation")) == 1
    # A level due while the bot was down whose clock stopped meanwhile is not sent.
    j = log(st, p, "Second", key="k2")
    st.services.issues.acknowledge(issue_id=j.id or 0, actor=ALICE)
    st.at(t0 + timedelta(hours=9))
    assert dms(st, BOB, "#2 was not acknowledged") == []


def test_level_2_reaches_both_sides_and_names_them(st: Stack) -> None:
    p = acme(st)  # Dan sponsors on our side; the partner's side has only Pat, a partner contact
    assert p.channel_id
    i = log(st, p)
    said = st.services.issues.escalate(issue_id=i.id or 0, actor=BOB).text()
    assert f"<@{DAN}> (our sponsor) and <@{PAT}> (the partner's contact)" in said
    st.tick()
    assert [len(dms(st, u, "Escalation in *Acme*")) for u in (DAN, PAT, ALICE, CAROL)] == [1, 1, 0, 0]
    # A sponsor of the partner's whom Slack shows as one of ours, recorded on their side: the sponsors hear it.
    st.services.partnerships.add_member(channel_id=p.channel_id, actor=ALICE, user_id=CAROL, role=Role.SPONSOR,
                                        side=Side.PARTNER)
    said = st.services.issues.escalate(issue_id=i.id or 0, actor=BOB).text()
    assert f"<@{DAN}> (our sponsor) and <@{CAROL}> (the partner's sponsor)" in said
    st.tick()
    assert [len(dms(st, u, "Escalation in *Acme*")) for u in (DAN, PAT, CAROL)] == [2, 1, 1]
    # Nobody on the partner's side and no sponsor: our owners hear it, and the note says who is missing.
    other = st.partnership("Globex", owners=(CAROL,))
    j = log(st, other, key="g1", owners=(None, None))
    said = st.services.issues.escalate(issue_id=j.id or 0, actor=CAROL).text()
    assert f"<@{CAROL}> (our owner); nobody on the partner's side to tell" in said
    assert "/partner add @person sponsor partner" in said


def test_permissions_name_who_may(st: Stack) -> None:
    p = acme(st)
    i = log(st, p, owners=(None, None))
    with pytest.raises(Forbidden, match=r"Only the owners of issue #1 \(it has none yet\) and the owners of \*Acme\*"):
        st.services.issues.acknowledge(issue_id=i.id or 0, actor=BOB)
    with pytest.raises(Forbidden, match="Only people in the"):
        st.services.issues.escalate(issue_id=i.id or 0, actor="UNOBODY")
    st.services.issues.assign(issue_id=i.id or 0, actor=ALICE, owner_ours=BOB, owner_partner=None)
    st.services.issues.acknowledge(issue_id=i.id or 0, actor=BOB)  # now an owner of the issue
    st.services.issues.resolve(issue_id=i.id or 0, actor=BOB, note="ok")
    with pytest.raises(Forbidden, match=r"Only its reporter \(<@UCAROL>\)"):
        st.services.issues.reopen(issue_id=i.id or 0, actor=BOB)
    with pytest.raises(Invalid, match="Write what was done"):
        st.services.issues.resolve(issue_id=i.id or 0, actor=BOB, note=" ")


def test_due_date_reminder_and_overdue_note_at_nine(st: Stack) -> None:
    p = acme(st)
    i = log(st, p, severity="low", due=date(2026, 3, 10))
    assert pending(st, ISSUE_DUE) == {f"issue_due:{i.id}:2026-03-10:remind": berlin(2026, 3, 9, 9, 0),
                                      f"issue_due:{i.id}:2026-03-10:overdue": berlin(2026, 3, 11, 9, 0)}
    st.at(berlin(2026, 3, 9, 9, 0))
    assert len(dms(st, BOB, "is due tomorrow")) == 1
    st.at(berlin(2026, 3, 11, 9, 0))
    assert len(dms(st, PAT, "was due Tue 10 Mar 2026")) == 1
    st.services.issues.resolve(issue_id=i.id or 0, actor=BOB, note="done")
    assert pending(st, ISSUE_DUE) == {}


def test_sla_settings_apply_to_running_clocks_and_new_issues(st: Stack) -> None:
    p = acme(st)
    svc = st.services.issues
    targets, _ = svc.parse_sla({"critical": ("2h", "2 days"), "high": ("4h", "3d"), "normal": ("1 day", "7 days"),
                                "low": ("3 days", "30 days")}, True, "mon-fri", "09:00", "17:00")
    with pytest.raises(Invalid) as refused:
        svc.parse_sla({"critical": ("0m", "1 day")}, False, "mon-fry", "09:00", "17:00")
    assert "sla_ack_critical" in refused.value.fields and "sla_days" in refused.value.fields
    st.clock.set(berlin(2026, 3, 2, 16, 30))
    i = log(st, p)  # Monday 16:30, critical: 1 h, due 17:30 while every hour counts
    assert ladder_of(st, i, "ack")["breach"] == berlin(2026, 3, 2, 17, 30)
    svc.save_sla(partnership_id=p.id or 0, actor=ALICE, targets=targets, business_hours=True, days="mon-fri",
                 start="09:00", end="17:00")
    # Its target stays 1 h, now counted in business hours: 30 min on Monday, 30 min on Tuesday morning.
    assert ladder_of(st, i, "ack")["breach"] == berlin(2026, 3, 3, 9, 30)
    st.clock.set(berlin(2026, 3, 6, 16, 0))  # Friday 16:00
    j = log(st, p, "Second", key="k2")
    assert ladder_of(st, j, "ack")["breach"] == berlin(2026, 3, 9, 10, 0)  # 2 h, business hours
    with pytest.raises(Forbidden):
        svc.save_sla(partnership_id=p.id or 0, actor=BOB, targets=targets, business_hours=False, days="mon-fri",
                     start="09:00", end="17:00")


def test_changing_business_hours_keeps_the_time_running_clocks_used_so_far(st: Stack) -> None:
    p = acme(st)

    def hours(on: bool) -> None:
        set_sla(st, p, business_hours=on)

    i = log(st, p)  # Monday 10:00, every hour counts; resolve within 1 day (24 h)
    st.clock.set(berlin(2026, 3, 2, 20, 0))  # 10 h used
    hours(True)
    # The 10 h stay used; the 14 h left count in business hours from now: Tuesday 8 h, Wednesday 6 h. (Counting
    # Monday again under the new hours would give 7 h used and Thursday 10:00.)
    assert ladder_of(st, i)["breach"] == berlin(2026, 3, 4, 15, 0)
    assert format_left(resolve_clock(issue(st)).left(st.clock.now(), BERLIN, WorkingHours())) == "14 h left"
    st.clock.set(berlin(2026, 3, 3, 12, 0))  # Tuesday 12:00: 3 business hours more, 13 h used
    hours(False)
    # The 11 h left count every hour from now: Tuesday 23:00 (counting all of it as real time would make it late).
    assert ladder_of(st, i)["breach"] == berlin(2026, 3, 3, 23, 0)
    hours(False)  # saving the same hours again changes nothing
    assert ladder_of(st, i)["breach"] == berlin(2026, 3, 3, 23, 0)


def test_figures_over_30_and_90_days(st: Stack) -> None:
    p = acme(st)
    t0 = st.clock.now()
    a = log(st, p, "A", key="a")  # critical: 1 h / 1 day
    st.clock.set(t0 + timedelta(minutes=30))
    st.services.issues.acknowledge(issue_id=a.id or 0, actor=BOB)
    st.clock.set(t0 + timedelta(hours=30))
    st.services.issues.resolve(issue_id=a.id or 0, actor=BOB, note="late")
    b = log(st, p, "B", key="b", severity="low")
    st.clock.set(t0 + timedelta(hours=32))
    st.services.issues.acknowledge(issue_id=b.id or 0, actor=BOB)
    assert p.channel_id
    _, now, windows = st.services.issues.stats(channel_id=p.channel_id, actor=PAT)
    w30 = windows[0]
    assert w30.days == 30 and w30.counted == 2
    assert dict(w30.by_severity) == {"critical": 1, "high": 0, "normal": 0, "low": 1}
    assert dict(now.by_status) == {"open": 0, "acknowledged": 1, "waiting": 0, "resolved": 1}
    assert (w30.mean_to_acknowledge, w30.mean_to_resolve) == ("75 min", "1 day 6 h")  # (30 min + 2 h) / 2; 30 h
    assert w30.acknowledged_in_time == 1.0 and w30.resolved_in_time == 0.0
    st.clock.set(t0 + timedelta(days=60))
    _, now, windows = st.services.issues.stats(channel_id=p.channel_id, actor=PAT)
    assert [w.counted for w in windows] == [0, 2]
    # B's resolve clock (low: 30 days) is still running past its target: missed already, not left out.
    assert windows[1].resolved_in_time == 0.0
    # 100 days on, B is outside both windows but still counts among the issues as they stand.
    st.clock.set(t0 + timedelta(days=100))
    _, now, windows = st.services.issues.stats(channel_id=p.channel_id, actor=PAT)
    assert [w.counted for w in windows] == [0, 0]
    assert (now.unresolved, now.total) == (1, 2)
    assert dict(now.unresolved_by_severity) == {"critical": 0, "high": 0, "normal": 0, "low": 1}
    assert dict(now.by_status)["acknowledged"] == 1


def test_compliance_counts_clocks_running_past_their_target_as_missed(st: Stack) -> None:
    p = acme(st)
    t0 = st.clock.now()
    on_time = log(st, p, "On time", key="a")  # critical: acknowledge within 1 h
    st.clock.set(t0 + timedelta(minutes=10))
    st.services.issues.acknowledge(issue_id=on_time.id or 0, actor=BOB)
    for n in range(3):  # nobody acknowledges these
        log(st, p, f"Ignored {n}", key=f"ignored{n}")
    assert p.channel_id
    st.clock.set(t0 + timedelta(minutes=40))  # the ignored ones are still within their hour: not counted yet
    _, _, windows = st.services.issues.stats(channel_id=p.channel_id, actor=PAT)
    assert windows[0].acknowledged_in_time == 1.0
    st.clock.set(t0 + timedelta(days=3))  # three days unacknowledged: missed
    _, _, windows = st.services.issues.stats(channel_id=p.channel_id, actor=PAT)
    assert windows[0].acknowledged_in_time == 0.25


def test_the_same_request_logs_one_issue_and_numbers_follow_per_partnership(st: Stack) -> None:
    p = acme(st)
    first = log(st, p, key="view:V1")
    again = log(st, p, "Typed again", key="view:V1")
    assert again.id == first.id and again.title == "Payments down"
    other = st.partnership("Globex", owners=(CAROL,))
    assert log(st, other, key="view:V2", owners=(None, None)).number == 1
    assert log(st, p, key="cmd:T3").number == 2
    st.tick()
    assert p.channel_id
    cards = [m for m in st.fake.messages(p.channel_id) if m.get("text", "").startswith("Issue #")]
    assert sorted(m["text"].split(":")[0] for m in cards) == ["Issue #1", "Issue #2"]  # posted in parallel


def test_the_planner_plans_many_unplanned_issues_a_batch_at_a_time(st: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    p = acme(st)
    svc = st.services.issues
    ids = [log(st, p, f"Issue {n}", key=f"k{n}").id for n in range(4)]
    resolved = log(st, p, "Done already", key="done")
    svc.resolve(issue_id=resolved.id or 0, actor=BOB, note="fixed")
    planned = pending(st)
    assert len(planned) == 4  # one timer each: the acknowledge clock's 80 % reminder
    with st.services.uow() as s:  # as after an upgrade: nothing planned yet
        for o in s.exec(select(Occurrence).where(Occurrence.kind == ISSUE_SLA)).all():
            s.delete(o)
        for row in s.exec(select(Issue)).all():
            row.planned_version = 0
    monkeypatch.setattr(issues_module, "ISSUE_PLAN_BATCH", 2)
    transactions: list[int] = []
    uow = svc.uow

    def counted(*args: object, **kwargs: object) -> object:
        transactions.append(1)
        return uow(*args, **kwargs)

    monkeypatch.setattr(svc, "uow", counted)
    assert svc.plan() == len(planned)
    assert pending(st) == planned
    assert len(transactions) == 3  # 2 + 2 issues, then none: the resolved one after them needs no timers
    with st.services.uow() as s:
        assert {(row.id, row.planned_version == row.version) for row in s.exec(select(Issue)).all()} == {
            *((i, True) for i in ids), (resolved.id, True)}
    transactions.clear()
    assert svc.plan() == 0 and len(transactions) == 1  # nothing left: one query


def test_the_planner_plans_again_what_a_crash_lost_with_the_partnerships_hours(st: Stack) -> None:
    p = acme(st)
    svc = st.services.issues
    set_sla(st, p, business_hours=True)
    st.clock.set(berlin(2026, 3, 6, 16, 30))  # Friday 16:30
    i = log(st, p, due=date(2026, 3, 20))
    planned = pending(st) | pending(st, ISSUE_DUE)
    assert svc.plan() == 0  # the change planned its timers (and said so): a pass finds nothing to do
    with st.services.uow() as s:  # timers lost (say, the issue was written by a version that planned fewer)
        for o in s.exec(select(Occurrence).where(Occurrence.subject_id == i.id)).all():
            if o.kind in (ISSUE_SLA, ISSUE_DUE):
                s.delete(o)
        row = s.get(Issue, i.id)
        assert row is not None
        row.planned_version = 0
    assert pending(st) == {}
    assert svc.plan() == len(planned)
    assert pending(st) | pending(st, ISSUE_DUE) == planned
    assert ladder_of(st, i, "ack")["breach"] == berlin(2026, 3, 9, 9, 30)  # 30 min on Friday, 30 on Monday
    assert svc.plan() == 0
    # Lost again after its 80 % reminder went out: the planner plans the level after the ones reached.
    st.at(berlin(2026, 3, 9, 9, 18))
    assert len(dms(st, BOB, "to acknowledge it")) == 1
    with st.services.uow() as s:
        for o in s.exec(select(Occurrence).where(Occurrence.kind == ISSUE_SLA, Occurrence.subject_id == i.id,
                                                 Occurrence.state == OccurrenceState.PENDING)).all():
            s.delete(o)
        row = s.get(Issue, i.id)
        assert row is not None
        row.planned_version = 0
    svc.plan()
    assert ladder_of(st, i, "ack")["breach"] == berlin(2026, 3, 9, 9, 30)
    assert f"issue_sla:{i.id}:ack:1:breach" in pending(st)
    st.at(berlin(2026, 3, 9, 9, 30))
    assert len(dms(st, BOB, "to acknowledge it")) == 1 and len(dms(st, BOB, "was not acknowledged")) == 1
    resolved = log(st, p, "Done already", key="k2")
    svc.resolve(issue_id=resolved.id or 0, actor=BOB, note="fixed")
    with st.services.uow() as s:
        for row in s.exec(select(Issue)).all():
            row.planned_version = 0
    assert svc.plan() == len(planned)  # nothing for a resolved issue


# -- the review's fixes ------------------------------------------------------------------------------------------------
def test_an_early_manual_escalation_leaves_the_resolve_clocks_escalation(st: Stack) -> None:
    p = acme(st)
    t0 = st.clock.now()
    i = log(st, p)  # critical: acknowledge within 1 h, resolve within 1 day
    j = log(st, p, "Second", key="k2")
    st.clock.set(t0 + timedelta(minutes=5))
    st.services.issues.escalate(issue_id=i.id or 0, actor=CAROL, note="Customer is down")
    st.services.issues.escalate(issue_id=j.id or 0, actor=CAROL)
    st.at(t0 + timedelta(minutes=10))
    st.services.issues.acknowledge(issue_id=i.id or 0, actor=BOB)
    st.at(t0 + timedelta(hours=2))  # #2, escalated by hand while waiting for its acknowledgement: not again
    assert dms(st, DAN, "#2 was not acknowledged within 1 h, and it is still not") == []
    # Its acknowledge clock's ladder is at the top (the escalation skipped): the resolve clock's reminder is next.
    assert {k for k in pending(st) if k.startswith(f"issue_sla:{j.id}:")} == {f"issue_sla:{j.id}:resolve:1:warn"}
    st.at(t0 + timedelta(hours=19, minutes=12))
    assert len([m for m in dms(st, BOB, "to resolve it") if "#2" in m]) == 1
    st.at(t0 + timedelta(days=2))  # #1's resolve clock was not the one escalated: its level 2 goes out
    assert len(dms(st, DAN, "#1 was not resolved within 1 day, and it is still not after 2 days")) == 1
    st.tick()
    notes = [m["text"] for m in st.fake.replies(p.channel_id or "", issue(st).message_ts or "")]
    assert f":sos: #1 was escalated to <@{DAN}> (our sponsor) and <@{PAT}> (the partner's contact)." in notes


def test_a_resolve_while_slack_is_asked_for_the_link_stops_the_breach_and_the_overdue_note(
    st: Stack, monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = acme(st)
    t0 = st.clock.now()
    log(st, p, due=date(2026, 3, 2))
    log(st, p, "Second", severity="low", key="k2", due=date(2026, 3, 2))
    st.tick()  # the cards are posted: the timers ask Slack for their link
    svc = st.services.issues
    asked = []

    def link_then_resolved(issue: Issue, slack: object = None) -> str:
        asked.append(issue.number)  # meanwhile someone resolves it
        svc.resolve(issue_id=issue.id or 0, actor=BOB, note="fixed meanwhile")
        return "https://fake.slack.test/card"

    monkeypatch.setattr(svc, "_link", link_then_resolved)
    st.at(t0 + timedelta(minutes=48))  # #1's 80 % reminder
    st.at(berlin(2026, 3, 3, 9, 0))  # #2's overdue note (#1 is resolved already)
    assert asked == [1, 2]
    assert dms(st, BOB, "to acknowledge it") == [] and dms(st, BOB, "#2") == []
    assert st.fake.dm_messages(PAT) == [] and dms(st, ALICE, "overdue") == []
    assert {issue(st, k).status for k in ("k1", "k2")} == {IssueStatus.RESOLVED}


def test_a_critical_issue_with_one_day_to_resolve_counts_a_working_day_in_business_hours(st: Stack) -> None:
    p = acme(st)
    svc = st.services.issues
    st.clock.set(berlin(2026, 3, 6, 16, 0))  # Friday 16:00
    plain = log(st, p)  # every hour counts: 1 day is 24 h
    assert ladder_of(st, plain)["breach"] == berlin(2026, 3, 7, 16, 0)
    svc.resolve(issue_id=plain.id or 0, actor=BOB, note="ok")
    targets, _ = svc.parse_sla({"critical": ("1h", "1 day"), "high": ("4h", "3d"), "normal": ("1 day", "1 week"),
                                "low": ("3 days", "30 days")}, True, "mon-fri", "09:00", "17:00")
    assert targets["critical"] == [3600, 8 * 3600] and targets["normal"] == [8 * 3600, 40 * 3600]
    svc.save_sla(partnership_id=p.id or 0, actor=ALICE, targets=targets, business_hours=True, days="mon-fri",
                 start="09:00", end="17:00")
    i = log(st, p, "Counted in working days", key="k2")
    # 1 h on Friday (16:00-17:00) and 7 h on Monday: Monday 16:00.
    assert ladder_of(st, i)["breach"] == berlin(2026, 3, 9, 16, 0)
    assert p.channel_id
    shown = svc.sla(channel_id=p.channel_id, actor=BOB).text
    assert "*critical*: acknowledge within 1 h, resolve within 1 day" in shown
    assert "*normal*: acknowledge within 1 day, resolve within 5 days" in shown
    assert "a working day (8 h)" in shown


def test_the_shortcut_asks_slack_no_names_once_its_time_is_up(st: Stack) -> None:
    p = acme(st)
    assert p.channel_id
    asked = st.fake.call_count("users.info")
    late = time.monotonic() - st.services.issues.names_within  # the form must open now
    pre = st.services.issues.prefill_from_message(channel_id=p.channel_id, actor=CAROL, text=f"<@{BOB}> is out",
                                                  message_ts=None, clicked_at=late)
    assert pre.title == f"@{BOB} is out" and st.fake.call_count("users.info") == asked
    pre = st.services.issues.prefill_from_message(channel_id=p.channel_id, actor=CAROL, text=f"<@{BOB}> is out",
                                                  message_ts=None)  # in time: named
    assert pre.title == "@bob is out" and st.fake.call_count("users.info") == asked + 1


# -- changing an issue after it was logged (the Edit form) -------------------------------------------------------------
def edit(st: Stack, i: Issue, actor: str = BOB, *, fields: list[str] | None = None, **changes: object) -> str:
    """Edit the issue as the form would: its current values, with `changes` over them."""
    current = {"title": i.title, "description": i.description, "severity": i.severity, "due_date": i.due_date}
    inp = validate(IssueInput, **{**current, **changes})
    return st.services.issues.edit(issue_id=i.id or 0, actor=actor, inp=inp, fields=fields).text()


def history(st: Stack, i: Issue) -> list[tuple[str, dict[str, object]]]:
    with st.services.uow() as s:
        return [(e.action, e.detail) for e in s.exec(select(IssueEvent).where(IssueEvent.issue_id == i.id)
                                                     .order_by(IssueEvent.id)).all()]  # type: ignore[arg-type]


def test_raising_the_severity_retargets_the_running_clocks_and_moves_the_planned_breach(st: Stack) -> None:
    p = acme(st)
    t0 = st.clock.now()
    i = log(st, p, severity="normal")  # acknowledge within 1 day, resolve within 7 days (every hour counts)
    assert ladder_of(st, i, "ack")["breach"] == t0 + timedelta(days=1)
    st.at(t0 + timedelta(hours=1))  # the card is posted; an hour of both clocks is used
    said = edit(st, i, severity="high")  # high: 4 h and 3 days, from the hour already used
    assert "Changed issue #1 *Payments down*: severity normal → high" in said
    assert ladder_of(st, i, "ack") == {"warn": t0 + timedelta(hours=3, minutes=12), "breach": t0 + timedelta(hours=4),
                                       "escalate": t0 + timedelta(hours=8)}
    assert ladder_of(st, i) == {"warn": t0 + timedelta(days=3) * 0.8, "breach": t0 + timedelta(days=3),
                                "escalate": t0 + timedelta(days=6)}
    assert pending(st) == {f"issue_sla:{i.id}:ack:1:warn": t0 + timedelta(hours=3, minutes=12)}
    now = issue(st)
    assert now.severity == "high" and ack_clock(now).target == timedelta(hours=4)
    st.at(t0 + timedelta(hours=4))  # the new breach goes out at its new moment, once
    st.tick()
    assert [len(dms(st, u, "was not acknowledged within 4 h")) for u in (BOB, PAT, ALICE)] == [1, 1, 1]
    notes = [m["text"] for m in st.fake.replies(p.channel_id or "", now.message_ts or "")]
    assert notes[0] == f"<@{BOB}> changed #1: severity normal → high"
    assert history(st, i)[1] == ("edited", {"changes": {"severity": ["normal", "high"]}})
    actions = [e.action for e in st.services.partnerships.audit_trail(p.id or 0)]
    assert actions.count("issue_edited") == 1
    # The same form again (a double click, Slack resending it) changes and records nothing more.
    assert "nothing to change" in edit(st, i, severity="high")
    assert [a for a, _ in history(st, i)].count("edited") == 1
    st.tick()
    assert len(st.fake.replies(p.channel_id or "", now.message_ts or "")) == len(notes)


def test_a_stopped_clock_keeps_its_target_and_its_result_when_the_severity_changes(st: Stack) -> None:
    p = acme(st)
    t0 = st.clock.now()
    i = log(st, p)  # critical: acknowledge within 1 h, resolve within 1 day
    st.clock.set(t0 + timedelta(hours=2))
    st.services.issues.acknowledge(issue_id=i.id or 0, actor=BOB)  # late: missed
    st.clock.set(t0 + timedelta(hours=3))
    edit(st, i, severity="low")  # low: 3 days and 30 days
    now = issue(st)
    assert ack_clock(now).target == timedelta(hours=1) and now.acknowledged_in_time is False
    assert resolve_clock(now).target == timedelta(days=30)
    assert resolve_clock(now).left(st.clock.now(), BERLIN, None) == timedelta(days=30, hours=-3)
    assert ladder_of(st, i)["breach"] == t0 + timedelta(days=30)
    assert set(pending(st)) == {f"issue_sla:{i.id}:resolve:1:warn"}


def test_a_paused_clock_takes_the_new_target_and_stays_paused(st: Stack) -> None:
    p = acme(st)
    t0 = st.clock.now()
    i = log(st, p, severity="normal")  # resolve within 7 days
    st.clock.set(t0 + timedelta(days=1))
    st.services.issues.wait(issue_id=i.id or 0, actor=BOB)  # a day used
    st.clock.set(t0 + timedelta(days=4))
    edit(st, i, severity="critical")  # resolve within 1 day: the day is used up, but the clock waits
    assert pending(st) == {}
    assert resolve_clock(issue(st)).paused and resolve_clock(issue(st)).target == timedelta(days=1)
    st.clock.set(t0 + timedelta(days=5))
    st.services.issues.resume(issue_id=i.id or 0, actor=BOB)
    assert ladder_of(st, i)["breach"] == t0 + timedelta(days=5)  # due at once
    st.at(t0 + timedelta(days=5))
    st.tick()  # the 80 % reminder, late as well, gives way to the breach
    assert dms(st, BOB, "to resolve it") == [] and len(dms(st, BOB, "was not resolved within 1 day")) == 1


def test_moving_and_clearing_the_due_date_replans_its_reminders(st: Stack) -> None:
    p = acme(st)
    i = log(st, p, severity="low", due=date(2026, 3, 10))
    said = edit(st, i, due_date=date(2026, 3, 12))
    assert "due date Tue 10 Mar 2026 → Thu 12 Mar 2026" in said
    assert pending(st, ISSUE_DUE) == {f"issue_due:{i.id}:2026-03-12:remind": berlin(2026, 3, 11, 9, 0),
                                      f"issue_due:{i.id}:2026-03-12:overdue": berlin(2026, 3, 13, 9, 0)}
    st.at(berlin(2026, 3, 9, 9, 0))  # the old reminder's moment: nothing
    assert dms(st, BOB, "is due tomorrow") == []
    said = edit(st, issue(st), due_date=None)
    assert "due date removed (was Thu 12 Mar 2026)" in said
    assert pending(st, ISSUE_DUE) == {}
    st.at(berlin(2026, 3, 13, 9, 0))
    assert dms(st, BOB, "due") == [] and issue(st).due_date is None
    assert history(st, i)[-1][1] == {"changes": {"due_date": ["2026-03-12", None]}}


def test_a_due_date_that_passed_is_refused_but_an_overdue_issue_keeps_its_date_while_edited(st: Stack) -> None:
    p = acme(st)
    i = log(st, p, severity="low", due=date(2026, 3, 3))
    with pytest.raises(Invalid, match="has passed") as refused:
        edit(st, i, due_date=date(2026, 3, 1))
    assert "due_date" in refused.value.fields and issue(st).due_date == date(2026, 3, 3)
    st.at(berlin(2026, 3, 5, 10, 0))  # overdue now: correcting the title keeps the date that passed
    assert "title “Payments down” → “Payments &lt;down&gt;”" in edit(st, i, title="Payments <down>")
    assert issue(st).title == "Payments <down>" and issue(st).due_date == date(2026, 3, 3)


def test_who_may_edit_the_reporter_yes_a_plain_member_no_a_resolved_issue_not(st: Stack) -> None:
    p = acme(st)
    i = log(st, p, owners=(None, PAT), actor=CAROL)  # Carol reported it; Pat owns it; Bob is a plain member
    svc = st.services.issues
    with pytest.raises(Forbidden, match=rf"Only the owners of issue #1 \(<@{PAT}>\), its reporter \(<@{CAROL}>\) "
                                        r"and the owners of \*Acme\* can edit it"):
        edit(st, i, BOB, title="Mine now")
    with pytest.raises(Forbidden):
        svc.for_action(issue_id=i.id or 0, actor=BOB, action="edit")  # the form does not open either
    assert issue(st).title == "Payments down"
    assert "title" in edit(st, i, CAROL, title="Payments down since 9:00")  # the reporter
    edit(st, issue(st), PAT, severity="high")  # an owner of the issue
    edit(st, issue(st), ALICE, description="Checkout fails")  # an owner of the partnership
    assert [a for a, _ in history(st, i)].count("edited") == 3
    svc.resolve(issue_id=i.id or 0, actor=PAT, note="fixed")
    with pytest.raises(Invalid, match=r"already resolved, so you cannot edit it\. Reopen it first"):
        edit(st, issue(st), CAROL, title="Again")
    with pytest.raises(Invalid, match="Reopen it first"):
        svc.for_action(issue_id=i.id or 0, actor=CAROL, action="edit")


def test_a_form_changes_only_the_fields_its_sender_changed(st: Stack) -> None:
    p = acme(st)
    i = log(st, p, severity="normal")
    edit(st, i, ALICE, severity="critical")  # meanwhile, in another form
    # Bob's form opened before that, still showing "normal": he changed the title only.
    edit(st, i, BOB, title="Payments down in EU", fields=["title"])
    now = issue(st)
    assert (now.title, now.severity) == ("Payments down in EU", "critical")


def test_thread_lines_due_at_once_are_posted_in_the_order_things_happened(st: Stack) -> None:
    p = acme(st)
    i = log(st, p)
    st.tick()  # the card is posted
    svc = st.services.issues
    # Five changes in the same second: their lines are all due at once, and the dispatcher runs them in parallel.
    svc.acknowledge(issue_id=i.id or 0, actor=BOB)
    svc.assign(issue_id=i.id or 0, actor=BOB, owner_ours=CAROL, owner_partner=PAT)
    svc.wait(issue_id=i.id or 0, actor=CAROL)
    svc.resume(issue_id=i.id or 0, actor=PAT)
    svc.resolve(issue_id=i.id or 0, actor=CAROL, note="Gateway restarted")
    for seconds in range(6):  # each line waits (a second at a time) for the ones before it
        st.at(st.clock.now() + timedelta(seconds=seconds and 1))
    lines = [m["text"] for m in st.fake.replies(p.channel_id or "", issue(st).message_ts or "")]
    assert [line.split(" ", 2)[1] for line in lines] == ["acknowledged", "assigned", "marked", "resumed", "resolved"]


# -- races with a level's completion, and lock order on PostgreSQL ----------------------------------------------------
@pytest.fixture
def pg_st(tmp_path: Path, pg_url: str) -> Iterator[Stack]:
    with stack(tmp_path, start=berlin(2026, 3, 2, 10, 0), database_url=pg_url) as s:
        s.bot.ticker.dispatcher.database_clock = False  # leases on the frozen clock
        yield s


def interleave(monkeypatch: pytest.MonkeyPatch, first: str, *, then: str) -> dict[str, threading.Event]:
    """Make two transactions ask for the issue card's row in this order: the thread named `then` takes it (in
    `request_refresh` or `request_refreshes`) only once the thread named `first` has reached the same call, and
    `first` goes on only once `then` holds it (or after 5 s): the order in which a button and a level's completion,
    or the SLA form, meet in production when they come at the same moment."""
    events = {first: threading.Event(), then: threading.Event()}

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        def ordered(*args: Any, **kwargs: Any) -> Any:
            name = threading.current_thread().name
            if name == first:
                events[first].set()
                events[then].wait(5)
                return original(*args, **kwargs)
            if name == then:
                events[first].wait(5)
                try:
                    return original(*args, **kwargs)
                finally:
                    events[then].set()
            return original(*args, **kwargs)
        return ordered

    monkeypatch.setattr(issues_module, "request_refresh", wrap(issues_module.request_refresh))
    monkeypatch.setattr(issues_module, "request_refreshes", wrap(issues_module.request_refreshes))
    return events


def together(**work: Callable[[], object]) -> dict[str, BaseException | None]:
    """Run each callable in a thread of its name, at once; what each raised (None: nothing)."""
    raised: dict[str, BaseException | None] = {}

    def run(name: str, call: Callable[[], object]) -> None:
        try:
            call()
            raised[name] = None
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            raised[name] = exc

    threads = [threading.Thread(target=run, args=(name, call), name=name) for name, call in work.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return raised


def warn_claimed(st: Stack) -> tuple[Partnership, Issue, Callable[[], None]]:
    """A critical issue whose acknowledge clock's 80 % reminder (after 48 min) is claimed: the partnership, the
    issue, and running that level (the dispatcher executing its claim)."""
    p = acme(st)
    t0 = st.clock.now()
    i = log(st, p)
    st.tick()
    st.clock.set(t0 + timedelta(minutes=48))
    dispatcher = st.bot.ticker.dispatcher
    claims = dispatcher.claim(10)
    assert [c.occ.key for c in claims] == [f"issue_sla:{i.id}:ack:1:warn"]
    return p, i, lambda: dispatcher.execute(claims[0])


def test_on_postgresql_a_button_while_a_level_completes_neither_deadlocks(
    pg_st: Stack, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A level's completion holds its occurrence's row, then takes the card's and the issue's; a change of the
    issue takes the card's and the issue's, then plans its timer: when that is the same level, it must not wait
    for the completion's row (PostgreSQL would break the cycle by failing one of them: the click, or the level)."""
    st = pg_st
    _, i, level = warn_claimed(st)
    interleave(monkeypatch, "level", then="button")
    raised = together(level=level,
                      button=lambda: st.services.issues.assign(issue_id=i.id or 0, actor=ALICE, owner_ours=CAROL,
                                                               owner_partner=PAT))
    assert raised == {"level": None, "button": None}
    assert issue(st).owner_ours == CAROL and issue(st).ack_reached == 1
    assert ladder_of(st, i, "ack")["breach"] == i.created_at + timedelta(hours=1)  # the next level is planned
    st.tick()
    assert len(dms(st, PAT, "to acknowledge it")) == 1


def test_on_postgresql_saving_the_sla_settings_while_a_button_is_clicked_neither_deadlocks(
    pg_st: Stack, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Saving the SLA settings re-plans every unresolved issue and has their cards updated; a button takes the
    card's row, then the issue's. Both must take them in that order, or PostgreSQL fails one of them."""
    st = pg_st
    p = acme(st)
    i = log(st, p)
    st.tick()
    st.clock.advance(minutes=5)
    interleave(monkeypatch, "sla", then="button")
    raised = together(sla=lambda: set_sla(st, p, business_hours=True),
                      button=lambda: st.services.issues.acknowledge(issue_id=i.id or 0, actor=BOB))
    assert raised == {"sla": None, "button": None}
    # The acknowledgement stands: the save, which waited for it, did not write the clocks it had read before it.
    assert issue(st).status == IssueStatus.ACKNOWLEDGED and not ack_clock(issue(st)).running
    with st.services.uow() as s:
        settings = s.get(IssueSlaSettings, p.id)
        assert settings is not None and settings.business_hours
    # Its 24 h to resolve, 5 min used, now count in business hours: Monday 6 h 55 min, Tuesday and Wednesday 8 h
    # each, Thursday 1 h.
    assert ladder_of(st, i)["breach"] == berlin(2026, 3, 5, 10, 0)


def test_a_resume_while_a_level_finds_its_clock_paused_keeps_the_ladder(st: Stack) -> None:
    """A level claimed as it fell due finds its clock paused (waiting on the partner was clicked at that moment)
    and is not sent; the Resume that comes before its completion is recorded cannot plan that level again (it is
    claimed), so the completion must: else the clock runs with nothing planned and no reminder ever comes."""
    p = acme(st)
    t0 = st.clock.now()
    i = log(st, p, severity="normal")  # 1 day / 7 days
    st.services.issues.acknowledge(issue_id=i.id or 0, actor=BOB)
    st.tick()
    st.clock.set(t0 + timedelta(days=5, hours=15))  # past the resolve clock's 80 % (5 days 14.4 h)
    dispatcher = st.bot.ticker.dispatcher
    claims = [c for c in dispatcher.claim(10) if c.occ.kind == ISSUE_SLA or dispatcher.execute(c)]
    assert [c.occ.key for c in claims] == [f"issue_sla:{i.id}:resolve:1:warn"]
    st.services.issues.wait(issue_id=i.id or 0, actor=PAT)

    def resumed_then_recorded(occ: Occurrence, completion: object) -> None:
        st.services.issues.resume(issue_id=i.id or 0, actor=PAT)
        dispatcher.complete(occ, completion)  # type: ignore[arg-type]

    dispatcher._execute(claims[0], resumed_then_recorded)
    assert dms(st, BOB, "to resolve it") == []  # not sent while paused
    assert ladder_of(st, i)["warn"] == t0 + timedelta(days=5, hours=15)  # due again at once, on the resumed run
    st.tick()
    assert len(dms(st, BOB, "to resolve it")) == 1
    st.at(t0 + timedelta(days=7))
    assert len(dms(st, BOB, "was not resolved within 7 days")) == 1


def test_an_issue_without_owners_has_its_reminders_go_to_the_partnerships_owners(st: Stack) -> None:
    p = acme(st)  # Alice owns the partnership
    t0 = st.clock.now()
    log(st, p, owners=(None, None), due=date(2026, 3, 3))  # critical: 80 % of 1 h after 48 min
    st.at(t0 + timedelta(minutes=48))
    assert len(dms(st, ALICE, "to acknowledge it")) == 1
    assert [dms(st, u, "to acknowledge it") for u in (BOB, CAROL, PAT, DAN)] == [[], [], [], []]
    st.at(berlin(2026, 3, 4, 9, 0))  # the day after the due date
    assert len(dms(st, ALICE, "was due Tue 3 Mar 2026")) == 1 and dms(st, CAROL, "was due") == []


def test_on_postgresql_a_level_completed_with_the_issues_overdue_note_reads_the_issue_afresh(
    pg_st: Stack, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Completions are recorded in batches: the overdue note's reads the issue, then a level's locks it. When the
    issue is resolved in between, the level must see it resolved, not the issue as the note read it."""
    st = pg_st
    p = acme(st)
    i = log(st, p, severity="low", due=date(2026, 3, 3))  # acknowledge within 3 days: 80 % on Wednesday 19:36
    st.tick()
    st.clock.set(berlin(2026, 3, 4, 20, 0))  # the overdue note (09:00) and the 80 % reminder are both due
    dispatcher = st.bot.ticker.dispatcher
    done: list[tuple[Occurrence, Any]] = []
    for c in dispatcher.claim(10):
        dispatcher._execute(c, lambda occ, completion: done.append((occ, completion)))
    assert [occ.key for occ, _ in done] == [f"issue_due:{i.id}:2026-03-03:overdue", f"issue_sla:{i.id}:ack:1:warn"]
    original = issues_module.request_refresh
    resolved: list[object] = []

    def resolved_meanwhile(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is threading.main_thread() and not resolved:
            resolved.append(together(button=lambda: st.services.issues.resolve(issue_id=i.id or 0, actor=BOB,
                                                                               note="Fixed")))
        return original(*args, **kwargs)

    monkeypatch.setattr(issues_module, "request_refresh", resolved_meanwhile)
    assert dispatcher.complete_many(done) == [True, True]
    assert resolved == [{"button": None}]
    monkeypatch.setattr(issues_module, "request_refresh", original)
    st.tick()
    assert issue(st).status == IssueStatus.RESOLVED and issue(st).ack_reached == 0
    assert dms(st, BOB, "to acknowledge it") == [] and pending(st) == {}
    assert len(dms(st, BOB, "was due Tue 3 Mar 2026")) == 1  # recorded before the resolve


def test_on_postgresql_saving_the_sla_settings_while_a_level_completes_neither_deadlocks(
    pg_st: Stack, monkeypatch: pytest.MonkeyPatch,
) -> None:
    st = pg_st
    p, i, level = warn_claimed(st)
    interleave(monkeypatch, "level", then="sla")
    raised = together(level=level,
                      sla=lambda: set_sla(st, p, critical=("2h", "1 day"), business_hours=False))
    assert raised == {"level": None, "sla": None}
    assert issue(st).ack_reached == 1
    # The issue keeps its 1 h target (new targets are for new issues); the breach is planned, by the level.
    assert ladder_of(st, i, "ack")["breach"] == i.created_at + timedelta(hours=1)
    st.tick()
    assert len(dms(st, BOB, "to acknowledge it")) == 1


def test_an_assign_form_sent_after_the_issue_was_resolved_is_refused_before_it_closes(st: Stack) -> None:
    p = acme(st)
    i = log(st, p)
    st.services.issues.check_assign(issue_id=i.id or 0, actor=BOB, owner_ours=CAROL, owner_partner=PAT)  # fine
    st.services.issues.resolve(issue_id=i.id or 0, actor=BOB, note="Fixed")  # meanwhile, while the form is open
    with pytest.raises(Invalid, match="already resolved, so you cannot assign it"):
        st.services.issues.check_assign(issue_id=i.id or 0, actor=BOB, owner_ours=CAROL, owner_partner=PAT)
