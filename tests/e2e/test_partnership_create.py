"""Creating partnerships: channel, members, Slack Connect invitations, topic, pinned charter."""

from __future__ import annotations

from sqlmodel import select

from models import AuditEvent, InvitationStatus, PartnerInvitation, Partnership, PartnershipStatus
from tests.e2e.conftest import ALICE, BOB, CAROL, DAN, Harness, flatten


def test_quick_create_sets_up_channel_charter_and_tells_the_creator(h: Harness) -> None:
    said = h.command("new Acme Logistics")
    ch = h.channel("partner-acme-logistics")
    assert said.status == 200
    assert f"<#{ch.id}>" in said.text and "is set up" in said.text
    assert ALICE in ch.members and "UBOT" in ch.members
    assert not ch.is_private
    assert "Acme Logistics" in ch.topic
    assert len(ch.pins) == 1
    charter = next(m for m in h.fake.messages(ch.id) if m["ts"] == ch.pins[0])
    text = flatten(charter)
    assert "Partnership charter: Acme Logistics" in text
    assert f"<@{ALICE}>" in text  # the caller is the owner
    assert "/partner help" in text
    with h.bot.services.uow() as s:
        p = s.exec(select(Partnership)).one()
        assert p.status == PartnershipStatus.ACTIVE and p.timezone == "Europe/Berlin"
        assert [e.action for e in s.exec(select(AuditEvent)).all()] == ["created"]


def test_taken_channel_name_gets_a_numbered_suffix(h: Harness) -> None:
    h.fake.add_channel("partner-acme")
    h.fake.add_channel("partner-acme-2", is_archived=True)
    h.command("new Acme")
    assert h.channel("partner-acme-3").members >= {ALICE, "UBOT"}


def test_a_command_that_says_payload_is_served_like_any_other(h: Harness) -> None:
    """Bolt reads a form body containing the word "payload" as an interaction: this one is a command."""
    said = h.command("new Payload Systems")
    assert said.status == 200
    ch = h.channel("partner-payload-systems")
    assert "is set up" in said.text and f"<#{ch.id}>" in said.text
    said = h.command("help payload=1&payload", channel=ch.id)
    assert said.status == 200 and "/partner" in said.text


def test_modal_creates_a_private_channel_with_people_and_partner_invitations(h: Harness) -> None:
    h.fake.shared_invite_errors["li@partner.com"] = "restricted_action"
    said = h.command("new")
    [opened] = h.fake.open_views(ALICE)
    view = opened["view"]
    assert view["callback_id"] == "partnership_new"
    status, ack = h.sender.submit_view(view, {
        "name": {"name": {"type": "plain_text_input", "value": "Globex"}},
        "partner_org": {"partner_org": {"type": "plain_text_input", "value": "Globex Corp"}},
        "owners": {"owners": {"type": "multi_users_select", "selected_users": [ALICE, BOB]}},
        "members": {"members": {"type": "multi_users_select", "selected_users": [CAROL, DAN]}},
        "partner_emails": {"partner_emails": {"type": "plain_text_input",
                                              "value": "ana@partner.com,\nli@partner.com"}},
        "goals": {"goals": {"type": "plain_text_input", "value": "Ship the joint product\nGrow EU sales"}},
        "timezone": {"timezone": {"type": "plain_text_input", "value": "America/New_York"}},
        "is_private": {"is_private": {"type": "checkboxes", "selected_options": [{"value": "private"}]}},
    }, user_id=ALICE)
    h.wait()
    assert status == 200 and not ack  # modal closes
    ch = h.channel("partner-globex")
    assert ch.is_private
    assert {ALICE, BOB, CAROL, DAN} <= ch.members
    assert [i.get("email") for i in ch.shared_invites] == ["ana@partner.com"]
    assert ch.purpose == "Ship the joint product"
    charter = flatten(next(m for m in h.fake.messages(ch.id) if m["ts"] == ch.pins[0]))
    assert "Globex Corp" in charter and "Grow EU sales" in charter and f"<@{BOB}>" in charter
    # The creator hears back privately where they ran /partner new, including the refused invitation.
    told = flatten(h.fake.responses(h.sender.last_response_url))
    assert f"<#{ch.id}>" in told
    assert "li@partner.com" in told and "restricted_action" in told and "/partner invite li@partner.com" in told
    assert said.status == 200
    with h.bot.services.uow() as s:
        invs = {i.email: i for i in s.exec(select(PartnerInvitation)).all()}
        assert invs["ana@partner.com"].status == InvitationStatus.SENT
        assert invs["li@partner.com"].status == InvitationStatus.FAILED
        assert invs["li@partner.com"].error == "restricted_action"
        assert s.exec(select(Partnership)).one().timezone == "America/New_York"


def test_refused_invitation_can_be_retried_with_invite(h: Harness) -> None:
    h.fake.paid = False
    h.command("new Initech")
    ch = h.channel("partner-initech")
    said = h.command("invite ana@partner.com", channel=ch.id)
    assert "not_paid" in said.text and "paid Slack plan" in said.text
    h.fake.paid = True
    said = h.command("invite <mailto:ana@partner.com|ana@partner.com>", channel=ch.id)
    assert "invitation sent to ana@partner.com" in said.text
    assert [i.get("email") for i in ch.shared_invites] == ["ana@partner.com"]
    info = h.command("info", channel=ch.id).text
    assert "ana@partner.com: invitation sent" in info


def test_modal_refuses_bad_input_field_by_field_and_keeps_the_modal_open(h: Harness) -> None:
    h.command("new")
    view = h.fake.open_views(ALICE)[-1]["view"]
    status, ack = h.sender.submit_view(view, {
        "name": {"name": {"type": "plain_text_input", "value": "N" * 81}},
        "owners": {"owners": {"type": "multi_users_select", "selected_users": [ALICE]}},
        "partner_emails": {"partner_emails": {"type": "plain_text_input", "value": "ana@partner.com not-an-email"}},
        "goals": {"goals": {"type": "plain_text_input", "value": "g" * 2001}},
        "timezone": {"timezone": {"type": "plain_text_input", "value": "Mars/Olympus"}},
    }, user_id=ALICE)
    h.wait()
    assert status == 200 and ack["response_action"] == "errors"
    errors = ack["errors"]
    assert "limit is 80" in errors["name"]
    assert "limit is 2000" in errors["goals"]
    assert "not-an-email" in errors["partner_emails"]
    assert "Mars/Olympus" in errors["timezone"]
    assert not [c for c in h.fake.channels.values() if c.name.startswith("partner-")]


def test_overlong_name_from_the_command_is_refused_with_its_limit(h: Harness) -> None:
    said = h.command("new " + "x" * 81)
    assert "limit is 80" in said.text
    assert not [c for c in h.fake.channels.values() if c.name.startswith("partner-")]


def test_user_text_cannot_ping_channel(h: Harness) -> None:
    h.command("new <!channel> *Acme* &lt;!here&gt;")
    ch = h.channel("partner-channel-acme-here")
    for message in h.fake.messages(ch.id):
        text = flatten(message)
        assert "<!channel>" not in text and "<!here>" not in text
    charter = flatten(h.fake.messages(ch.id)[0])
    assert "@channel *Acme* &lt;!here&gt;" in charter


def test_channel_refused_by_slack_leaves_no_partnership_and_can_be_retried(h: Harness) -> None:
    h.fake.fail("conversations.create", "restricted_action")
    said = h.command("new Hooli")
    assert "restricted_action" in said.text and "nothing was" in said.text
    with h.bot.services.uow() as s:
        assert s.exec(select(Partnership)).all() == []
    said = h.command("new Hooli")
    assert "is set up" in said.text
    assert h.channel("partner-hooli")


def test_double_submit_and_repeated_name_create_nothing_twice(h: Harness) -> None:
    h.command("new")
    view = h.fake.open_views(ALICE)[-1]["view"]
    values = {"name": {"name": {"type": "plain_text_input", "value": "Umbrella"}},
              "owners": {"owners": {"type": "multi_users_select", "selected_users": [ALICE]}},
              "timezone": {"timezone": {"type": "plain_text_input", "value": "UTC"}}}
    h.sender.submit_view(view, values, user_id=ALICE)
    h.wait()
    h.sender.submit_view(view, values, user_id=ALICE)  # a double click / Slack retry of the same view
    h.wait()
    again = h.command("new Umbrella")
    assert "already open" in again.text
    assert [c.name for c in h.fake.channels.values() if c.name.startswith("partner-")] == ["partner-umbrella"]
    with h.bot.services.uow() as s:
        assert len(s.exec(select(Partnership)).all()) == 1


def test_rate_limits_and_server_errors_are_retried(h: Harness) -> None:
    h.fake.fail("chat.postMessage", "ratelimited", status=429, headers={"Retry-After": "1"})
    h.fake.fail("conversations.setTopic", "internal_error", status=500)
    said = h.command("new Wayne")
    ch = h.channel("partner-wayne")
    assert "is set up" in said.text and ":warning:" not in said.text
    assert len(ch.pins) == 1 and ch.topic
