"""Polls end to end: signed requests to the real HTTP endpoint, one fake Slack for the module, the scheduler
driven with a frozen clock, and what people see in Slack."""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ALICE, BOB, CAROL, DAN, Harness, flatten, new_fake, start_harness
from tests.fakes import FakeSlack
from tests.support.clock import FrozenClock

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # Monday 09:00 in Berlin
NAMES = itertools.count(1)


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[FakeSlack]:
    fake = new_fake()
    yield fake
    fake.stop()


@pytest.fixture
def clock(shared_fake: FakeSlack) -> FrozenClock:
    clock = FrozenClock(START)
    shared_fake.clock = clock.epoch
    return clock


@pytest.fixture
def hp(shared_fake: FakeSlack, tmp_path: Path, clock: FrozenClock) -> Iterator[Harness]:
    harness = start_harness(shared_fake, tmp_path, clock=clock)
    yield harness
    harness.close()


def partnership(h: Harness) -> str:
    """A partnership with Alice (owner), Bob and Carol; returns its channel."""
    h.command(f"new Polls{next(NAMES)}")
    [(p, _)] = h.bot.services.partnerships.for_user(ALICE)
    assert p.channel_id
    for user in (BOB, CAROL):
        h.command(f"add <@{user}|{user.lower()}>", channel=p.channel_id)
    return p.channel_id


def polls(h: Harness, cid: str) -> list[dict[str, Any]]:
    """The channel's poll messages, by number (polls posted in the same tick may arrive in any order)."""
    found = [m for m in h.fake.messages(cid) if m.get("text", "").startswith("Poll #")]
    return sorted(found, key=lambda m: int(m["text"].split("#")[1].split(" ")[0]))


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["text"]["text"]: {**e, "block_id": b.get("block_id", "actions")}
            for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]}


def click(h: Harness, user: str, message: dict[str, Any], label: str) -> str:
    """Click a button of the poll's message; returns what the person was told privately."""
    b = buttons(message)[label]
    h.sender.block_action(b["action_id"], b["value"], user_id=user, channel_id=message["channel"],
                          message=message, block_id=b["block_id"])
    h.wait()
    return flatten(h.fake.responses(h.sender.last_response_url))


def fresh(h: Harness, message: dict[str, Any]) -> dict[str, Any]:
    return h.fake.message(message["channel"], message["ts"])


def form_values(**override: Any) -> dict[str, Any]:
    def opt(value: str) -> dict[str, Any]:
        return {"type": "static_select", "selected_option": {"value": value}}

    values: dict[str, Any] = {
        "question": {"type": "plain_text_input", "value": "Which features matter most?"},
        "kind": opt("multiple"),
        "options": {"type": "plain_text_input", "value": "SSO\nAudit log\nAPI"},
        "max_picks": {"type": "plain_text_input", "value": "2"},
        "anonymous": {"type": "checkboxes", "selected_options": []},
        "results": {"type": "radio_buttons", "selected_option": {"value": "live"}},
        "closes": {"type": "plain_text_input", "value": "3 days"},
        "audience": {"type": "radio_buttons", "selected_option": {"value": "all"}},
        "chosen": {"type": "multi_users_select", "selected_users": []},
        "reminder": opt("half"),
    }
    values.update(override)
    return {block: {block: value} for block, value in values.items()}


def test_a_quick_poll_with_curly_quotes_votes_changes_and_refusals(hp: Harness, clock: FrozenClock) -> None:
    h = hp
    cid = partnership(h)
    said = h.command("poll \u201cWhich launch date?\u201d \u201cMarch 3\u201d \u201cMarch 10\u201d closes 3d",
                     channel=cid, user=BOB)
    assert "Poll #1 is being posted" in said.text
    h.tick()
    [poll] = polls(h, cid)
    shown = flatten(poll)
    assert "*Poll #1*  Which launch date?" in shown and f"Asked by <@{BOB}>" in shown
    assert "everyone in *Polls" in shown and "Closes <!date^" in shown and "Not anonymous" in shown
    assert {"March 3", "March 10", "Close poll"} <= set(buttons(poll))

    assert "Your vote is now *March 3*" in click(h, CAROL, poll, "March 3")
    assert "already voted *March 3*; nothing changed" in click(h, CAROL, poll, "March 3")
    assert "Your vote is now *March 10*" in click(h, CAROL, poll, "March 10")
    assert "is for everyone in *Polls" in click(h, DAN, poll, "March 3")  # an outsider: not counted
    clock.advance(seconds=1)
    h.tick()
    shown = flatten(fresh(h, poll))
    assert "100% (1)  March 10" in shown and "0% (0)  March 3" in shown and "(1 answered)" in shown

    # A quick command that cannot be read opens the form with what it could read, and says why.
    said = h.command('poll "Which day?" "Mon"', channel=cid)
    assert "at least 2 options" in said.text and "/partner poll \"Which launch date?\"" in said.text
    form = h.fake.open_views(ALICE)[-1]["view"]
    question = next(b for b in form["blocks"] if b.get("block_id") == "question")
    assert question["element"]["initial_value"] == "Which day?"
    said = h.command("poll Which day? Mon Tue", channel=cid)
    assert "in quotes" in said.text
    # Without options it is an open-text question.
    h.command('poll "Any feedback on the pilot?" anonymous', channel=cid)
    h.tick()
    text_poll = polls(h, cid)[-1]
    assert "Answer" in buttons(text_poll) and "Anonymous" in flatten(text_poll)


def test_a_poll_from_the_form_with_field_errors_and_a_pick_limit(hp: Harness, clock: FrozenClock) -> None:
    h = hp
    cid = partnership(h)
    assert "Only people in" in h.command("poll", channel=cid, user=DAN).text
    h.command("poll", channel=cid)
    form = h.fake.open_views(ALICE)[-1]["view"]
    assert form["callback_id"] == "poll_new"
    status, ack = h.sender.submit_view(form, form_values(
        options={"type": "plain_text_input", "value": "SSO\nsso"},
        closes={"type": "plain_text_input", "value": "2026-03-01 10:00"},
        question={"type": "plain_text_input", "value": "q" * 301}), user_id=ALICE)
    assert status == 200 and ack["response_action"] == "errors"
    assert "twice" in ack["errors"]["options"] and "past" in ack["errors"]["closes"]
    assert "limit is 300" in ack["errors"]["question"]
    status, ack = h.sender.submit_view(form, form_values(audience={"type": "radio_buttons", "selected_option": {
        "value": "partner"}}), user_id=ALICE)
    assert "Nobody" in ack["errors"]["audience"]
    status, ack = h.sender.submit_view(form, form_values(), user_id=ALICE)
    h.wait()
    assert not ack and "Poll #1 is being posted" in flatten(h.fake.responses(h.sender.last_response_url) +
                                                            h.fake.dm_messages(ALICE))
    h.tick()
    [poll] = polls(h, cid)
    assert "pick up to 2" in flatten(poll)
    assert "Your picks now: *SSO*" in click(h, BOB, poll, "SSO")
    assert "Your picks now: *SSO*, *API*" in click(h, BOB, poll, "API")
    assert "at most 2" in click(h, BOB, poll, "Audit log")
    assert "Your picks now: *API*" in click(h, BOB, poll, "SSO")


def test_reminder_then_closing_on_time(hp: Harness, clock: FrozenClock) -> None:
    h = hp
    cid = partnership(h)
    h.command('poll "Rate the kickoff" "Good" "Bad" closes 4h', channel=cid)
    h.tick()
    [poll] = polls(h, cid)
    before = copy.deepcopy(poll)  # the message as a person still sees it while the poll closes
    click(h, BOB, poll, "Good")
    clock.advance(hours=2)
    h.tick()
    assert [len(h.fake.dm_messages(u)) for u in (ALICE, BOB, CAROL)] == [1, 0, 1]
    reminder = h.fake.dm_messages(CAROL)[0]
    assert "Rate the kickoff" in flatten(reminder) and buttons(reminder)["Open the poll"]["url"]
    clock.advance(hours=2)
    h.tick()
    closed = fresh(h, poll)
    assert "Closed <!date^" in flatten(closed) and "*Results* (1 answered)" in flatten(closed)
    assert set(buttons(closed)) == {"Export CSV"}  # no more voting; the export stays
    assert "no longer taken" in click(h, CAROL, before, "Bad")


def test_closing_after_a_restart_past_the_deadline_says_it_closed_late(
    shared_fake: FakeSlack, tmp_path: Path, clock: FrozenClock,
) -> None:
    h = start_harness(shared_fake, tmp_path, clock=clock)
    cid = partnership(h)
    h.command('poll "Go or no go?" "Go" "No go" closes 2h', channel=cid)
    h.tick()
    [poll] = polls(h, cid)
    click(h, BOB, poll, "Go")
    h.close()  # the bot is down at the deadline
    clock.advance(hours=5)
    h = start_harness(shared_fake, tmp_path, clock=clock)
    try:
        h.tick()
        shown = flatten(fresh(h, poll))
        assert "Closed late" in shown and "100% (1)  Go" in shown
    finally:
        h.close()


def test_close_early_by_the_creator_and_refused_for_others(hp: Harness, clock: FrozenClock) -> None:
    h = hp
    cid = partnership(h)
    h.command('poll "Lunch?" "Yes" "No"', channel=cid, user=BOB)
    h.command('poll "What should we improve?"', channel=cid, user=BOB)
    h.tick()
    first, second = copy.deepcopy(polls(h, cid))
    assert "can close it early" in click(h, CAROL, first, "Close poll")
    assert "Closed poll #1" in click(h, BOB, first, "Close poll")
    h.tick()
    assert f"Closed early by <@{BOB}>" in flatten(fresh(h, first)) and set(buttons(fresh(h, first))) == {"Export CSV"}
    assert "can close it early" in h.command("poll close 2", channel=cid, user=CAROL).text
    listed = h.command("poll list", channel=cid, user=CAROL).text
    assert "#2>" in listed and "What should we improve?" in listed and "Lunch?" in listed
    # The open-text poll: an answer through its form, then the owner closes it and the answers are in its thread.
    b = buttons(second)["Answer"]
    h.sender.block_action(b["action_id"], b["value"], user_id=CAROL, channel_id=cid, message=second,
                          block_id=b["block_id"])
    h.wait()
    view = h.fake.open_views(CAROL)[-1]["view"]
    _, ack = h.sender.submit_view(view, {"answer": {"answer": {"type": "plain_text_input", "value": " "}}},
                                  user_id=CAROL)
    assert ack["response_action"] == "errors" and "Write an answer" in ack["errors"]["answer"]
    h.sender.submit_view(view, {"answer": {"answer": {"type": "plain_text_input", "value": "Ping <!here> less"}}},
                         user_id=CAROL)
    h.wait()
    assert "Closed poll #2" in h.command("poll close", channel=cid, user=ALICE).text
    h.tick()
    [reply] = h.fake.replies(cid, second["ts"])
    assert f"<@{CAROL}>: Ping &lt;!here&gt; less" in flatten(reply)  # not anonymous: with its author
    assert "already closed" in h.command("poll close 2", channel=cid, user=ALICE).text
    assert "There is no poll #9" in h.command("poll close 9", channel=cid, user=ALICE).text


def test_poll_list_answers_at_once_and_the_list_follows(hp: Harness, clock: FrozenClock) -> None:
    """Linking each poll asks Slack once per poll: the command is answered first (Slack waits 3 seconds), and
    the list follows through the command's response URL."""
    h = hp
    cid = partnership(h)
    h.command('poll "Lunch?" "Yes" "No"', channel=cid, user=BOB)
    h.tick()
    answered = threading.Event()
    linked_after_answer: list[bool] = []

    def hold_links(method: str, args: dict[str, Any], body: dict[str, Any]) -> None:
        if method == "chat.getPermalink":
            linked_after_answer.append(answered.wait(5))

    h.fake.after_success = hold_links
    try:
        status, _ = h.sender.command("/partner", "poll list", user_id=CAROL, channel_id=cid)
        answered.set()
        assert status == 200
        h.wait()
    finally:
        h.fake.after_success = None
    assert linked_after_answer == [True]
    listed = "\n".join(flatten(m) for m in h.fake.responses(h.sender.last_response_url))
    assert "#1>" in listed and "Lunch?" in listed
