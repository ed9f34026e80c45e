"""The issue log end to end: signed requests to the real HTTP endpoint, the scheduler driven with a frozen clock,
and what people see in the fake Slack (the card, its thread, direct messages, private answers)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.conftest import ALICE, BOB, CAROL, DAN, PARTNER_PAT, Harness, flatten, start_harness
from tests.fakes import FakeSlack
from tests.support.clock import FrozenClock

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(berlin(2026, 3, 2, 10, 0))  # Monday morning


@pytest.fixture
def hc(fake: FakeSlack, tmp_path: Any, clock: FrozenClock) -> Iterator[Harness]:
    fake.clock = clock.epoch
    harness = start_harness(fake, tmp_path, clock=clock)
    yield harness
    harness.close()


def setup_partnership(h: Harness) -> str:
    """Acme: Alice owns it, Bob and Carol are on our side, Pat on the partner's; Dan is not in it."""
    h.command("new Acme")
    cid = str(h.channel("partner-acme").id)
    for user in (BOB, CAROL, PARTNER_PAT):
        h.command(f"add <@{user}|{user.lower()}>", channel=cid)
    return cid


def cards(h: Harness, cid: str) -> list[dict[str, Any]]:
    return [m for m in h.fake.messages(cid) if (m.get("text") or "").startswith("Issue #")]


def card(h: Harness, cid: str, number: int = 1) -> dict[str, Any]:
    [found] = [m for m in cards(h, cid) if m["text"].startswith(f"Issue #{number}:")]
    return found


def thread(h: Harness, cid: str, number: int = 1) -> list[str]:
    return [m["text"] for m in h.fake.replies(cid, card(h, cid, number)["ts"])]


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["text"]["text"]: e for b in message.get("blocks", []) if b["type"] == "actions" for e in b["elements"]}


def click(h: Harness, user: str, message: dict[str, Any], label: str, channel: str) -> str:
    """Click a button on a message; returns what the person was told privately."""
    button = buttons(message)[label]
    h.sender.block_action(button["action_id"], button["value"], user_id=user, channel_id=channel, message=message)
    h.wait()
    return flatten(h.fake.responses(h.sender.last_response_url))


def submit(h: Harness, user: str, values: dict[str, Any]) -> Any:
    form = h.fake.open_views(user)[-1]["view"]
    _, ack = h.sender.submit_view(form, values, user_id=user)
    h.wait()
    return ack


def text_value(block: str, value: str) -> dict[str, Any]:
    return {block: {block: {"type": "plain_text_input", "value": value}}}


def test_log_by_command_acknowledge_and_resolve_with_permissions(hc: Harness, clock: FrozenClock) -> None:
    h = hc
    cid = setup_partnership(h)
    said = h.command("issue Partner API returns 500 <!channel>", channel=cid, user=CAROL)
    assert "Logged issue #1 *Partner API returns 500 @channel* (normal)" in said.text
    h.tick()
    c = card(h, cid)
    shown = flatten(c)
    assert "<!channel>" not in shown and "@channel" in shown  # no mention through a title
    assert "normal" in shown and "open" in shown and f"reported by <@{CAROL}>" in shown
    assert "nobody yet" in shown  # no owner yet
    assert "Acknowledge by" in shown and "1 day left" in shown and "Resolve by" in shown and "7 days left" in shown
    assert {"Acknowledge", "Assign", "Waiting on partner", "Resolve", "Escalate"} == set(buttons(c))

    # Dan is not in the partnership: he cannot log; Bob (a member, not an owner of it) cannot acknowledge.
    assert "Only people in the *Acme* partnership can log issues" in h.command("issue Nope", channel=cid, user=DAN).text
    told = click(h, BOB, c, "Acknowledge", cid)
    assert "Only the owners of issue #1 (it has none yet) and the owners of *Acme* can acknowledge it" in told
    assert f"<@{ALICE}>" in told

    # Alice (an owner of the partnership) acknowledges: the card is updated in place, the thread says who.
    clock.advance(minutes=35)
    told = click(h, ALICE, c, "Acknowledge", cid)
    assert "Issue #1" in told and "acknowledged" in told
    h.tick()
    c = card(h, cid)
    assert len(cards(h, cid)) == 1
    assert "acknowledged" in flatten(c) and "acknowledged within its target" in flatten(c)
    assert "Acknowledge" not in buttons(c)
    assert thread(h, cid) == [f"<@{ALICE}> acknowledged #1"]

    # Resolve: a form asking for the resolution note (empty is refused under the input); posted in the thread.
    click(h, ALICE, c, "Resolve", cid)
    ack = submit(h, ALICE, text_value("issue_note", "  "))
    assert ack["response_action"] == "errors" and "Write what was done" in ack["errors"]["issue_note"]
    ack = submit(h, ALICE, text_value("issue_note", "Rolled back the <b>proxy</b> config"))
    assert not ack
    clock.advance(seconds=30)
    h.tick()
    c = card(h, cid)
    assert "resolved" in flatten(c) and set(buttons(c)) == {"Reopen"}
    assert thread(h, cid)[-1] == f"<@{ALICE}> resolved #1: Rolled back the &lt;b&gt;proxy&lt;/b&gt; config"

    # The history, privately, and the audit trail.
    detail = h.command("issue 1", channel=cid, user=BOB).text
    assert "History" in detail and "logged" in detail and "acknowledged" in detail and "resolved" in detail
    p = h.bot.services.partnerships.by_channel(cid)
    assert p is not None
    actions = [e.action for e in h.bot.services.partnerships.audit_trail(p.partnership.id or 0)]
    assert {"issue_logged", "issue_acknowledged", "issue_resolved"} <= set(actions)
