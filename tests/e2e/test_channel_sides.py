"""People joining and leaving a partnership's channel in Slack, end to end: the fake Slack queues the
member_joined_channel / member_left_channel events Slack would send, they go signed to the real HTTP
endpoint, and what people see is read back from /partner info and the check-in overview."""

from __future__ import annotations

from sqlmodel import select

from models import AuditEvent
from tests.e2e.conftest import BOB, CAROL, PARTNER_PAT, Harness

LI = "ULI"


def _partnership(h: Harness) -> str:
    h.command("new Acme")
    cid = str(h.channel("partner-acme").id)
    h.deliver_events()  # the bot and Alice joining the new channel: already recorded
    return cid


def _sides(info: str) -> tuple[str, str]:
    ours, partner = info.split("*Partner's side*")
    return ours, partner.split("*Partner invitations*")[0].split("*Recent changes*")[0]


def _audit(h: Harness) -> list[str]:
    with h.bot.services.uow() as s:
        return [e.action for e in s.exec(select(AuditEvent)).all()]


def test_a_partner_person_joining_the_channel_is_recorded_on_the_partners_side(h: Harness) -> None:
    h.fake.add_user(LI, "li", email="li@partner.com", team_id="T0PARTNER")
    cid = _partnership(h)
    assert "Slack Connect invitation sent" in h.command("invite li@partner.com", channel=cid).text
    assert "li@partner.com: invitation sent" in h.command("info", channel=cid).text

    h.fake.accept_shared_invite("li@partner.com", LI)  # Li accepts in their own Slack and joins
    h.deliver_events()

    info = h.command("info", channel=cid).text
    ours, partner = _sides(info)
    assert f"*Partner contacts*: <@{LI}>" in partner and f"<@{LI}>" not in ours
    assert f"li@partner.com: :white_check_mark: accepted by <@{LI}>" in info
    assert (f"<@{LI}> accepted the Slack Connect invitation to li@partner.com and joined as partner contact on "
            "the partner's side") in info
    # Li is someone of the partnership now: their commands in the channel work.
    assert "Only people in" not in h.command("info", user=LI, channel=cid).text


def test_one_of_ours_joining_is_a_member_and_joins_elsewhere_change_nothing(h: Harness) -> None:
    cid = _partnership(h)
    h.fake.join(cid, CAROL, inviter=BOB)  # Bob adds Carol in Slack, without Partnerbot
    h.fake.join(cid, "UOTHERBOT")
    h.fake.join(h.general, PARTNER_PAT)
    h.deliver_events()
    ours, partner = _sides(h.command("info", channel=cid).text)
    assert f"*Members*: <@{CAROL}>" in ours and "UOTHERBOT" not in ours + partner
    assert "_nobody yet_" in partner
    assert "not in any partnership" in h.command("list", user=PARTNER_PAT).text


def test_who_leaves_stays_recorded_but_is_not_in_new_check_ins_until_back(h: Harness) -> None:
    cid = _partnership(h)
    for user in (BOB, CAROL):
        h.command(f"add <@{user}|{user.lower()}>", channel=cid)
    h.deliver_events()  # Partnerbot's own invitations to the channel: already recorded
    h.command("checkin schedule mon 09:30", channel=cid)
    assert "Taking part (all members, 3)" in h.command("checkin", channel=cid).text

    h.fake.leave(cid, BOB)
    h.deliver_events()
    info = h.command("info", channel=cid).text
    assert f"<@{BOB}> _(left the channel)_" in info and f"<@{BOB}> left the channel: still recorded" in info
    overview = h.command("checkin", channel=cid).text
    assert "Taking part (all members, 2)" in overview and f"<@{BOB}>" not in overview

    h.fake.join(cid, BOB)
    h.deliver_events()
    assert "left the channel_" not in h.command("info", channel=cid).text
    assert "Taking part (all members, 3)" in h.command("checkin", channel=cid).text


def test_an_event_slack_delivers_again_changes_nothing_twice(h: Harness) -> None:
    cid = _partnership(h)
    h.fake.join(cid, PARTNER_PAT)
    [joined] = h.deliver_events()
    for attempt in (1, 2):  # Slack got no answer in time, and tries again
        status, _ = h.sender.redeliver(joined, retry_num=attempt)
        assert status == 200
        h.wait()
    assert _audit(h).count("joined") == 1
    assert h.command("info", channel=cid).text.count(f"<@{PARTNER_PAT}>") == 2  # the side list and the change

    h.fake.leave(cid, PARTNER_PAT)
    [left] = h.deliver_events()
    h.sender.redeliver(left, retry_num=1)
    h.sender.redeliver(joined, retry_num=3, reason="http_error")  # the join's last retry, minutes late
    h.wait()
    assert _audit(h).count("left") == 1 and "rejoined" not in _audit(h)
    assert f"<@{PARTNER_PAT}> _(left the channel)_" in h.command("info", channel=cid).text
