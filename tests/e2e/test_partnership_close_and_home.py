"""Closing a partnership (owners, with confirmation) and the App Home tab."""

from __future__ import annotations

from sqlmodel import select

from models import Partnership, PartnershipStatus
from tests.e2e.conftest import ALICE, BOB, Harness, flatten


def _create(h: Harness, name: str = "Acme") -> str:
    h.command(f"new {name}")
    return h.channel(f"partner-{name.lower()}").id


def _buttons(said_messages: list) -> list[dict]:
    return [element for message in said_messages if isinstance(message, dict)
            for block in message.get("blocks", []) for element in block.get("elements", [])
            if element.get("action_id") == "partnership_close_confirm"]


def _confirm_button(said_messages: list) -> dict:
    found = _buttons(said_messages)
    assert found, f"no confirm button in {said_messages}"
    return found[-1]


def test_owner_closes_after_confirmation(h: Harness) -> None:
    cid = _create(h)
    said = h.command("close the contract ended", channel=cid)
    assert "Close *Acme*?" in said.text
    assert not h.fake.channels[cid].is_archived  # nothing happens before the confirmation
    button = _confirm_button(said.messages)
    assert "confirm" in button  # Slack shows a confirmation dialog too
    url = h.fake.new_response_url()
    h.sender.block_action("partnership_close_confirm", button["value"], user_id=ALICE, channel_id=cid,
                          response_url=url)
    h.wait()
    ch = h.fake.channels[cid]
    assert ch.is_archived
    summary = flatten(h.fake.messages(cid)[-1])
    assert "Partnership closed: Acme" in summary and "the contract ended" in summary
    assert "Closed *Acme*" in flatten(h.fake.responses(url))
    with h.bot.services.uow() as s:
        p = s.exec(select(Partnership)).one()
        assert p.status == PartnershipStatus.CLOSED and p.closed_by == ALICE
        assert p.close_reason == "the contract ended"
    # A double click closes nothing twice.
    h.sender.block_action("partnership_close_confirm", button["value"], user_id=ALICE, channel_id=cid,
                          response_url=url)
    h.wait()
    assert "already closed" in flatten(h.fake.responses(url)[-1])
    assert sum("Partnership closed" in flatten(m) for m in h.fake.messages(cid)) == 1
    # The name is free again; the closed one stays listed.
    assert "closed" in h.command("list").text
    assert "is set up" in h.command("new Acme").text


def test_non_owners_are_refused(h: Harness) -> None:
    cid = _create(h)
    h.command(f"add <@{BOB}|bob>", channel=cid)
    said = h.command("close", user=BOB, channel=cid)
    assert "Only owners of *Acme* can close it" in said.text
    assert not any(_buttons(said.messages))
    # An owner who asked to close it, and is no longer an owner when confirming, is refused too.
    h.command(f"add <@{BOB}|bob> owner", channel=cid)
    button = _confirm_button(h.command("close", user=BOB, channel=cid).messages)
    h.command(f"add <@{BOB}|bob> member", channel=cid)
    url = h.fake.new_response_url()
    h.sender.block_action("partnership_close_confirm", button["value"], user_id=BOB, channel_id=cid, response_url=url)
    h.wait()
    assert "Only owners of *Acme* can close it" in flatten(h.fake.responses(url))
    assert not h.fake.channels[cid].is_archived


def test_cancel_closes_nothing(h: Harness) -> None:
    cid = _create(h)
    h.command("close", channel=cid)
    url = h.fake.new_response_url()
    h.sender.block_action("partnership_close_cancel", "cancel", user_id=ALICE, channel_id=cid, response_url=url)
    h.wait()
    assert "Nothing was closed" in flatten(h.fake.responses(url))
    assert not h.fake.channels[cid].is_archived


def test_overlong_close_reason_is_refused_with_its_limit(h: Harness) -> None:
    cid = _create(h)
    assert "limit is 500" in h.command("close " + "r" * 501, channel=cid).text


def test_home_tab_lists_partnerships_and_opens_the_new_modal(h: Harness) -> None:
    cid = _create(h)
    h.sender.event({"type": "app_home_opened", "user": ALICE, "channel": "D1", "tab": "home"})
    h.wait()
    home = h.fake.home_views[ALICE]
    text = flatten(home["blocks"])
    assert f"<#{cid}>" in text and "Acme" in text and "active" in text
    button = home["blocks"][2]["elements"][0]
    assert button["action_id"] == "partnership_new_open"
    h.sender.block_action("partnership_new_open", "new", user_id=ALICE, view=home)
    h.wait()
    assert h.fake.open_views(ALICE)[-1]["view"]["callback_id"] == "partnership_new"
    h.sender.event({"type": "app_home_opened", "user": BOB, "channel": "D2", "tab": "home"})
    h.wait()
    assert "not in any partnership yet" in flatten(h.fake.home_views[BOB]["blocks"])
