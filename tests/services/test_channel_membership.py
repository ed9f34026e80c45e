"""Who is on which side: people joining or leaving a partnership's channel in Slack are recorded once, on the
right side, and audiences count only those still in the channel. Against the fake Slack, frozen clock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from adapters.slack import SlackUser
from models import InvitationStatus, Member, ParticipantMode, PartnerInvitation, Partnership, Role, Side
from services.inputs import ScheduleInput, validate
from services.partnerships import PartnershipService
from tests.support.stack import ALICE, BOB, CAROL, PAT, TEAM, Stack, stack

LI, STRANGER = "ULI", "USTRANGER"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def st(tmp_path: Path) -> Iterator[Stack]:
    with stack(tmp_path, start=T0) as s:
        s.fake.add_user(LI, "li", email="Li@Partner.com", team_id="T0PARTNER")
        s.fake.add_user(STRANGER, "someone", is_stranger=True)
        yield s


def svc(st: Stack) -> PartnershipService:
    return st.services.partnerships


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def audit(st: Stack, p: Partnership) -> list[tuple[str, str]]:
    return [(e.action, e.actor_id) for e in svc(st).audit_trail(p.id or 0)]


def audience(st: Stack, p: Partnership, side: Side | None = None) -> list[str]:
    with st.services.uow(read_only=True) as s:
        return [m.user_id for m in svc(st).audience(s, p.id or 0, side)]


def side_of(st: Stack, p: Partnership, user: str) -> Side | None:
    with st.services.uow(read_only=True) as s:
        return svc(st).side_of(s, p.id or 0, user)


def invitations(st: Stack, p: Partnership) -> dict[str, PartnerInvitation]:
    with st.services.uow(read_only=True) as s:
        return {i.email: i for i in s.exec(select(PartnerInvitation).where(PartnerInvitation.partnership_id == p.id))}


def invited(st: Stack, *emails: str) -> Partnership:
    p = st.partnership(members=[BOB])
    assert p.channel_id
    for email in emails:
        svc(st).invite_partner(channel_id=p.channel_id, actor=ALICE, email=email)
    return p


# -- which side ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("user", "side"), [
    (SlackUser("U1", TEAM, "a", False, None, None), Side.OURS),
    (SlackUser("U1", "T0PARTNER", "a", False, None, None), Side.PARTNER),
    (SlackUser("U1", None, "a", False, None, None, is_stranger=True), Side.PARTNER),
    (SlackUser("U1", TEAM, "a", False, None, None, is_external=True), Side.PARTNER),
    (SlackUser("U1", None, "a", False, None, None), Side.OURS),  # Slack told no team: nothing says otherwise
])
def test_the_side_is_the_partners_for_people_of_another_organization(st: Stack, user: SlackUser, side: Side) -> None:
    p = Partnership(name="x", timezone="UTC", team_id=TEAM, created_by=ALICE)
    assert svc(st).side_for(p, user) == side
    # An older partnership that never learnt its workspace uses the one the app is installed in.
    assert svc(st).side_for(Partnership(name="x", timezone="UTC", team_id="", created_by=ALICE), user) == side


@pytest.mark.parametrize(("user", "side"), [
    # A colleague from another workspace of our Enterprise Grid organization is on our side.
    (SlackUser("U1", "T0SALES", "a", False, None, None, enterprise_id="E0OURS"), Side.OURS),
    (SlackUser("U1", "T0PARTNER", "a", False, None, None, enterprise_id="E0PARTNER"), Side.PARTNER),
    (SlackUser("U1", "T0SALES", "a", False, None, None, is_external=True, enterprise_id="E0OURS"), Side.PARTNER),
    (SlackUser("U1", "T0PARTNER", "a", False, None, None), Side.PARTNER),  # no organization known: by team
])
def test_on_enterprise_grid_the_organization_decides_the_side(st: Stack, user: SlackUser, side: Side) -> None:
    grid = svc(st)
    home = grid.enterprise_id
    try:
        grid.enterprise_id = "E0OURS"
        assert grid.side_for(Partnership(name="x", timezone="UTC", team_id=TEAM, created_by=ALICE), user) == side
    finally:
        grid.enterprise_id = home


# -- joining ----------------------------------------------------------------------------------------------------
def test_a_partner_person_joining_with_an_invitation_is_a_partner_contact_and_accepts_it(st: Stack) -> None:
    p = invited(st, "li@partner.com", "other@partner.com")
    assert p.channel_id
    member = svc(st).member_joined(channel_id=p.channel_id, user_id=LI, at=at(1))
    assert member is not None and (member.role, member.side) == (Role.PARTNER_CONTACT, Side.PARTNER)
    assert side_of(st, p, LI) == Side.PARTNER and audience(st, p, Side.PARTNER) == [LI]
    assert audience(st, p, Side.OURS) == [ALICE, BOB] and audience(st, p) == [ALICE, BOB, LI]
    found = invitations(st, p)
    assert (found["li@partner.com"].status, found["li@partner.com"].accepted_by) == (InvitationStatus.ACCEPTED, LI)
    assert found["li@partner.com"].accepted_at == T0
    assert found["other@partner.com"].status == InvitationStatus.SENT
    assert audit(st, p)[-1] == ("joined_by_invitation", LI)


def test_one_of_ours_joining_is_a_member_and_a_stranger_a_partner_contact(st: Stack) -> None:
    p = st.partnership()
    assert p.channel_id
    svc(st).member_joined(channel_id=p.channel_id, user_id=CAROL, at=at(1), inviter=ALICE)
    svc(st).member_joined(channel_id=p.channel_id, user_id=STRANGER, at=at(2))
    with st.services.uow(read_only=True) as s:
        rows = {m.user_id: (m.role, m.side, m.added_by) for m in s.exec(select(Member))}
    assert rows[CAROL] == (Role.MEMBER, Side.OURS, ALICE)
    assert rows[STRANGER] == (Role.PARTNER_CONTACT, Side.PARTNER, STRANGER)
    assert audit(st, p)[-2:] == [("joined", CAROL), ("joined", STRANGER)]


def test_without_a_visible_email_the_person_is_recorded_and_the_invitation_waits(st: Stack) -> None:
    p = invited(st, "pat@partner.com")
    assert p.channel_id
    st.fake.users[PAT]["profile"].pop("email")  # Pat's organization hides addresses
    svc(st).member_joined(channel_id=p.channel_id, user_id=PAT, at=at(1))
    assert side_of(st, p, PAT) == Side.PARTNER
    assert invitations(st, p)["pat@partner.com"].status == InvitationStatus.SENT


def test_joins_that_are_not_people_of_a_partnership_change_nothing(st: Stack) -> None:
    p = st.partnership()
    other = st.partnership("Globex")
    assert p.channel_id and other.channel_id
    st.fake.add_user("UOTHERBOT", "otherbot", is_bot=True)
    general = st.fake.add_channel("general", members=[ALICE])
    before = audit(st, p)
    assert svc(st).member_joined(channel_id=p.channel_id, user_id=st.services.bot_user_id, at=at(1)) is None
    assert svc(st).member_joined(channel_id=p.channel_id, user_id="UOTHERBOT", at=at(2)) is None
    assert svc(st).member_joined(channel_id=general, user_id=CAROL, at=at(3)) is None
    svc(st).close(partnership_id=other.id or 0, actor=ALICE, reason="done")
    assert svc(st).member_joined(channel_id=other.channel_id, user_id=CAROL, at=at(4)) is None
    assert audit(st, p) == before and audience(st, p) == [ALICE] and side_of(st, p, CAROL) is None


def test_a_failed_look_up_records_nobody_and_raises_nothing(st: Stack) -> None:
    p = st.partnership()
    assert p.channel_id
    st.fake.fail("users.info", "user_not_visible")
    assert svc(st).member_joined(channel_id=p.channel_id, user_id=LI, at=at(1)) is None
    assert side_of(st, p, LI) is None
    svc(st).member_joined(channel_id=p.channel_id, user_id=LI, at=at(2))  # the next time they join
    assert side_of(st, p, LI) == Side.PARTNER


def test_an_invitation_slack_may_have_sent_says_so_instead_of_asking_to_send_it_again(st: Stack) -> None:
    p = st.partnership(members=[BOB])
    assert p.channel_id
    st.fake.fail("conversations.inviteShared", "internal_error", status=500)
    told = svc(st).invite_partner(channel_id=p.channel_id, actor=ALICE, email="li@partner.com").text()
    # Slack failed part-way: the invitation may be in Li's inbox already, so a blind "retry" would send it twice.
    assert "may have" in told and "refused" not in told
    assert invitations(st, p)["li@partner.com"].status == InvitationStatus.FAILED
    st.fake.fail("conversations.inviteShared", "invalid_email")
    told = svc(st).invite_partner(channel_id=p.channel_id, actor=ALICE, email="li@partner.com").text()
    assert "refused (`invalid_email`)" in told and "Retry with `/partner invite li@partner.com`" in told


# -- leaving, rejoining, and events Slack delivers again --------------------------------------------------------
def test_who_leaves_stays_recorded_but_counts_in_no_new_audience_until_back(st: Stack) -> None:
    p = invited(st, "li@partner.com")
    assert p.channel_id
    svc(st).member_joined(channel_id=p.channel_id, user_id=LI, at=at(1))
    svc(st).member_left(channel_id=p.channel_id, user_id=LI, at=at(2))
    assert audience(st, p) == [ALICE, BOB] and audience(st, p, Side.PARTNER) == []
    assert side_of(st, p, LI) == Side.PARTNER  # their past answers keep their side
    svc(st).member_left(channel_id=p.channel_id, user_id=BOB, at=at(3))
    assert audience(st, p) == [ALICE]
    svc(st).member_joined(channel_id=p.channel_id, user_id=LI, at=at(4))
    assert audience(st, p) == [ALICE, LI]
    assert [a for a, _ in audit(st, p)][-4:] == ["joined_by_invitation", "left", "left", "rejoined"]
    assert invitations(st, p)["li@partner.com"].status == InvitationStatus.ACCEPTED


def test_an_event_delivered_again_changes_nothing_twice(st: Stack) -> None:
    p = st.partnership()
    assert p.channel_id
    for _ in range(2):
        svc(st).member_joined(channel_id=p.channel_id, user_id=LI, at=at(1))
    trail = audit(st, p)
    for _ in range(2):
        svc(st).member_left(channel_id=p.channel_id, user_id=LI, at=at(2))
    assert audit(st, p) == [*trail, ("left", LI)]
    # Slack's last retries come minutes later: the join, older than the leave, is no news.
    svc(st).member_joined(channel_id=p.channel_id, user_id=LI, at=at(1))
    assert audience(st, p) == [ALICE] and audit(st, p) == [*trail, ("left", LI)]
    # A leave older than someone's join (they were in the channel before being added) does not remove them.
    st.fake.add_user("UEVE", "eve", team_id=TEAM)
    svc(st).member_joined(channel_id=p.channel_id, user_id="UEVE", at=at(10))
    svc(st).member_left(channel_id=p.channel_id, user_id="UEVE", at=at(5))
    assert "UEVE" in audience(st, p)


def test_the_same_join_delivered_twice_at_once_is_recorded_once(st: Stack) -> None:
    p = st.partnership()
    assert p.channel_id
    both_asking = threading.Barrier(2, timeout=10)

    def hold(method: str, args: dict[str, Any], body: dict[str, Any]) -> None:
        if method == "users.info":
            both_asking.wait()  # both deliveries have looked and found nobody recorded

    st.fake.after_success = hold
    results: list[Member | None] = []
    threads = [threading.Thread(target=lambda: results.append(
        svc(st).member_joined(channel_id=p.channel_id or "", user_id=LI, at=at(1)))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 2
    assert [a for a, _ in audit(st, p)].count("joined") == 1 and audience(st, p) == [ALICE, LI]


@pytest.mark.postgres
def test_the_same_join_delivered_twice_at_once_is_recorded_once_on_postgres(pg_url: str, tmp_path: Path) -> None:
    with stack(tmp_path, start=T0, database_url=pg_url) as s:
        s.fake.add_user(LI, "li", email="li@partner.com", team_id="T0PARTNER")
        test_the_same_join_delivered_twice_at_once_is_recorded_once(s)


def test_check_ins_leave_out_who_left_the_channel_also_when_people_were_chosen(st: Stack) -> None:
    p = st.partnership(members=[BOB, CAROL])
    assert p.channel_id
    checkins = st.services.checkins

    def taking_part() -> list[str]:
        return checkins.overview(channel_id=p.channel_id or "", actor=ALICE).participants

    checkins.quick_schedule(channel_id=p.channel_id, actor=ALICE, args="mon 09:30")
    svc(st).member_left(channel_id=p.channel_id, user_id=BOB, at=at(1))
    assert taking_part() == [ALICE, CAROL]
    inp = validate(ScheduleInput, weekdays="mon", local_time="09:30", timezone="Europe/Berlin",
                   participant_mode=ParticipantMode.CHOSEN, participants=[BOB, CAROL, PAT])
    checkins.save_schedule(partnership_id=p.id or 0, actor=ALICE, inp=inp)
    assert taking_part() == [CAROL, PAT]  # Pat was chosen without being recorded: still asked
    svc(st).member_joined(channel_id=p.channel_id, user_id=BOB, at=at(2))
    assert taking_part() == [BOB, CAROL, PAT]
