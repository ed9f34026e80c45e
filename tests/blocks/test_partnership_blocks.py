"""Partnership Block Kit: valid within Slack's limits, user text escaped."""

from __future__ import annotations

from datetime import UTC, datetime

from blocks import partnerships as pb
from models.partnership import (
    GOALS_MAX,
    NAME_MAX,
    InvitationStatus,
    Member,
    PartnerInvitation,
    Partnership,
    PartnershipStatus,
    Role,
    Side,
)
from tests.blocks.blockkit import assert_valid_message_blocks, assert_valid_view, mrkdwn_texts

HOSTILE = "<!channel> <@U999> <https://evil.example|click> &"


def _partnership(**kw: object) -> Partnership:
    values: dict[str, object] = dict(
        id=1, name=HOSTILE, partner_org=HOSTILE, goals=HOSTILE, timezone="Europe/Berlin", created_by="U1",
        channel_id="C1", status=PartnershipStatus.ACTIVE, created_at=datetime.now(UTC),
    )
    values.update(kw)
    return Partnership(**values)


def _members() -> list[Member]:
    return [Member(partnership_id=1, user_id=f"U{i}", role=list(Role)[i % 4], side=list(Side)[i % 2], added_by="U1")
            for i in range(12)]


def test_charter_escapes_user_text_and_mentions_people_by_id() -> None:
    blocks = pb.charter_blocks(_partnership(), _members())
    assert_valid_message_blocks(blocks)
    text = mrkdwn_texts(blocks)
    assert "<!channel>" not in text and "<https://evil" not in text and "<@U999>" not in text
    assert "&lt;!channel&gt;" in text and "&amp;" in text
    assert "<@U0>" in text  # owners mentioned from ids


def test_info_list_close_and_summary_are_valid_at_the_limits() -> None:
    p = _partnership(name="N" * NAME_MAX, goals="g" * GOALS_MAX, partner_org="o" * 120,
                     status=PartnershipStatus.CLOSED, closed_by="U1", close_reason=HOSTILE)
    invitations = [PartnerInvitation(partnership_id=1, email=f"p{i}@x.com", status=InvitationStatus.FAILED,
                                     error="not_paid", invited_by="U1") for i in range(40)]
    info = pb.info_blocks(p, _members(), invitations)
    assert_valid_message_blocks(info)
    assert "…and 20 more" in mrkdwn_texts(info)
    assert "<!channel>" not in mrkdwn_texts(info)
    assert_valid_message_blocks(pb.close_confirm_blocks(p, "r" * 500, 7))
    assert_valid_message_blocks(pb.closing_summary_blocks(p, _members(), "U1"))
    many = [(_partnership(id=i, name=f"Partner {i}"), Role.MEMBER) for i in range(300)]
    assert_valid_message_blocks(pb.list_blocks(many))


def test_modal_and_home_views_are_valid() -> None:
    modal = pb.new_partnership_modal(default_timezone="Europe/Berlin", creator="U1", name="x" * 200,
                                     response_url="https://hooks.slack.com/commands/T/1/abc")
    assert_valid_view(modal)
    assert modal["blocks"][0]["element"]["initial_value"] == "x" * NAME_MAX
    many = [(_partnership(id=i, name=f"P{i}"), Role.OWNER) for i in range(150)]
    home = pb.home_view(many)
    assert_valid_view(home)
    assert "…and 60 more" in mrkdwn_texts(home["blocks"])
    assert_valid_view(pb.home_view([]))
