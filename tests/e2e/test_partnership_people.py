"""Members and roles, info and list, and commands outside a partnership channel."""

from __future__ import annotations

from sqlmodel import select

from models import AuditEvent, Member, Role, Side
from tests.e2e.conftest import ALICE, BOB, CAROL, DAN, PARTNER_PAT, Harness


def _create(h: Harness, name: str = "Acme") -> str:
    h.command(f"new {name}")
    return h.channel(f"partner-{name.lower()}").id


def _members(h: Harness) -> dict[str, tuple[Role, Side]]:
    with h.bot.services.uow() as s:
        return {m.user_id: (m.role, m.side) for m in s.exec(select(Member)).all()}


def test_owner_adds_people_with_roles_and_they_join_the_channel(h: Harness) -> None:
    cid = _create(h)
    said = h.command(f"add <@{BOB}|bob> sponsor", channel=cid)
    assert f"Added <@{BOB}>" in said.text and "sponsor" in said.text
    h.command(f"add <@{CAROL}|carol>", channel=cid)
    h.command(f"add <@{PARTNER_PAT}|pat>", channel=cid)
    assert {BOB, CAROL, PARTNER_PAT} <= h.fake.channels[cid].members
    assert _members(h) == {
        ALICE: (Role.OWNER, Side.OURS), BOB: (Role.SPONSOR, Side.OURS), CAROL: (Role.MEMBER, Side.OURS),
        PARTNER_PAT: (Role.PARTNER_CONTACT, Side.PARTNER),
    }
    assert "already sponsor" in h.command(f"add <@{BOB}|bob> sponsor", channel=cid).text
    assert "to owner" in h.command(f"add <@{BOB}|bob> owner", channel=cid).text
    with h.bot.services.uow() as s:
        actions = [e.action for e in s.exec(select(AuditEvent)).all()]
    assert actions == ["created", "member_added", "member_added", "member_added", "role_changed"]


def test_the_side_is_given_in_words_when_slack_cannot_tell(h: Harness) -> None:
    cid = _create(h)
    # Dan is the partner's sponsor with an account in our workspace: Slack shows him as one of ours.
    said = h.command(f"add <@{DAN}|dan> sponsor partner", channel=cid)
    assert f"Added <@{DAN}>" in said.text and "as sponsor (the partner's side)" in said.text
    assert _members(h)[DAN] == (Role.SPONSOR, Side.PARTNER)
    h.command(f"add <@{DAN}|dan> owner", channel=cid)  # a new role keeps the side recorded
    assert _members(h)[DAN] == (Role.OWNER, Side.PARTNER)
    assert "now on our side" in h.command(f"add <@{DAN}|dan> owner ours", channel=cid).text
    assert _members(h)[DAN] == (Role.OWNER, Side.OURS)
    assert "already owner" in h.command(f"add <@{DAN}|dan> owner our-side", channel=cid).text
    # What Slack knows, or a role, cannot be contradicted; a side that is none is explained.
    said = h.command(f"add <@{PARTNER_PAT}|pat> sponsor ours", channel=cid)
    assert "another organization" in said.text and PARTNER_PAT not in _members(h)
    assert "partner contact is on the partner's side" in h.command(f"add <@{BOB}|bob> partner ours", channel=cid).text
    assert "is not a side" in h.command(f"add <@{BOB}|bob> sponsor upstairs", channel=cid).text
    assert BOB not in _members(h)


def test_bad_add_input_is_explained(h: Harness) -> None:
    cid = _create(h)
    assert "@mention" in h.command("add bob", channel=cid).text
    assert "is not a role" in h.command(f"add <@{BOB}|bob> emperor", channel=cid).text
    assert "is a bot" in h.command("add <@UOTHERBOT|otherbot>", channel=cid).text
    assert "does not know the user" in h.command("add <@UNOBODY|x>", channel=cid).text


def test_only_owners_change_people(h: Harness) -> None:
    cid = _create(h)
    h.command(f"add <@{BOB}|bob>", channel=cid)
    said = h.command(f"add <@{CAROL}|carol> owner", user=BOB, channel=cid)
    assert "Only owners of *Acme* can add people" in said.text and f"<@{ALICE}>" in said.text
    assert CAROL not in _members(h)
    assert "Only owners" in h.command(f"remove <@{ALICE}|alice>", user=BOB, channel=cid).text
    assert "Only owners" in h.command("invite x@partner.com", user=BOB, channel=cid).text


def test_remove_takes_people_out_of_partnership_and_channel_but_not_the_last_owner(h: Harness) -> None:
    cid = _create(h)
    h.command(f"add <@{BOB}|bob>", channel=cid)
    said = h.command(f"remove <@{BOB}|bob>", channel=cid)
    assert f"Removed <@{BOB}>" in said.text
    assert BOB not in h.fake.channels[cid].members and BOB not in _members(h)
    said = h.command(f"remove <@{ALICE}|alice>", channel=cid)
    assert "only owner" in said.text and ALICE in _members(h)
    assert "is not part of" in h.command(f"remove <@{CAROL}|carol>", channel=cid).text


def test_info_shows_charter_people_by_role_and_side(h: Harness) -> None:
    cid = _create(h)
    h.command(f"add <@{BOB}|bob> sponsor", channel=cid)
    h.command(f"add <@{PARTNER_PAT}|pat>", channel=cid)
    info = h.command("info", channel=cid).text
    assert "Acme" in info and ":large_green_circle: active" in info
    ours, partner = info.split("*Partner's side*")
    assert f"*Sponsors*: <@{BOB}>" in ours and f"*Owners*: <@{ALICE}>" in ours
    assert f"*Partner contacts*: <@{PARTNER_PAT}>" in partner
    # Recent changes: who did what, when (in the partnership's time zone).
    assert f"<@{ALICE}> created the partnership" in info
    assert f"<@{ALICE}> added <@{BOB}> as sponsor" in info and f"added <@{PARTNER_PAT}> as partner contact" in info


def test_list_shows_the_callers_partnerships_with_links_and_status(h: Harness) -> None:
    a = _create(h, "Acme")
    b = _create(h, "Globex")
    h.command(f"add <@{BOB}|bob>", channel=b)
    mine = h.command("list").text
    assert f"<#{a}>" in mine and f"<#{b}>" in mine and "active" in mine
    bobs = h.command("list", user=BOB).text
    assert f"<#{b}>" in bobs and f"<#{a}>" not in bobs
    assert "not in any partnership" in h.command("list", user=CAROL).text


def test_commands_needing_a_partnership_explain_where_to_run_them(h: Harness) -> None:
    for sub in ("info", f"add <@{BOB}|bob>", f"remove <@{BOB}|bob>", "invite a@b.com", "close"):
        said = h.command(sub)
        assert "works inside a partnership channel" in said.text, sub
        assert "/partner list" in said.text
