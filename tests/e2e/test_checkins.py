"""Check-ins end to end: signed requests to the real HTTP endpoint, the scheduler driven with a frozen
clock, and what people see in the fake Slack."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from models.checkin import CheckinAnswer
from tests.e2e.conftest import ALICE, BOB, CAROL, DAN, Harness, flatten, start_harness
from tests.fakes import FakeSlack
from tests.support.clock import FrozenClock

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(berlin(2026, 3, 2, 8, 0))  # Monday morning


@pytest.fixture
def hc(fake: FakeSlack, tmp_path: Any, clock: FrozenClock) -> Iterator[Harness]:
    fake.clock = clock.epoch
    harness = start_harness(fake, tmp_path, clock=clock)
    yield harness
    harness.server.close()
    harness.executor.shutdown(wait=True)
    harness.bot.close()


def setup_partnership(h: Harness) -> str:
    h.command("new Acme")
    cid = h.channel("partner-acme").id
    for user in (BOB, CAROL):
        h.command(f"add <@{user}|{user.lower()}>", channel=cid)
    return str(cid)


def setup_values(**override: Any) -> dict[str, Any]:
    def opt(value: str) -> dict[str, Any]:
        return {"type": "static_select", "selected_option": {"value": value}}

    values: dict[str, Any] = {
        "weekdays": {"type": "checkboxes", "selected_options": [{"value": "mon"}, {"value": "wed"}]},
        "local_time": {"type": "timepicker", "selected_time": "09:30"},
        "timezone": {"type": "plain_text_input", "value": "Europe/Berlin"},
        "questions": {"type": "plain_text_input",
                      "value": "What moved?\nBlocker: Any blockers?\nNeed: What do you need from us?"},
        "window": opt("240"),
        "reminder": opt("half"),
        "participant_mode": {"type": "radio_buttons", "selected_option": {"value": "all"}},
        "participants": {"type": "multi_users_select", "selected_users": []},
    }
    values.update(override)
    return {block: {block: value} for block, value in values.items()}


def questions(*lines: str) -> dict[str, Any]:
    """The questions form, filled in with these lines."""
    return {"questions": {"questions": {"type": "plain_text_input", "value": "\n".join(lines)}}}


def answer_values(*answers: str) -> dict[str, Any]:
    return {f"q{i}": {f"q{i}": {"type": "plain_text_input", "value": a}} for i, a in enumerate(answers)}


def prompt_message(h: Harness, cid: str) -> dict[str, Any]:
    [prompt] = [m for m in h.fake.messages(cid) if m.get("text", "").startswith(("Check-in time", "Check-in closed"))]
    return prompt


def listed_by_kind(message: dict[str, Any]) -> dict[str, list[tuple[str, str, str]]]:
    """The summary's blocker and need answers under their headings, as a person sees them: each answer's
    text and its button (label and value)."""
    listed: dict[str, list[tuple[str, str, str]]] = {}
    heading = None
    for block in message["blocks"]:
        text = flatten(block)
        if block.get("accessory") and heading is not None:
            button = block["accessory"]
            assert button["action_id"] == "issue_from_answer"
            listed[heading].append((text, button["text"]["text"], button["value"]))
        elif text.startswith("*Blockers") or text.startswith("*Needs from the partner"):
            heading = text.strip("*")
            listed[heading] = []
    return listed


def answer_ids(h: Harness) -> dict[str, int]:
    """Each person's answer id (the last round's), which the Log as issue buttons carry."""
    with h.bot.services.uow() as s:
        return {a.user_id: a.id for a in s.exec(select(CheckinAnswer).order_by(CheckinAnswer.id)).all()}


def click_answer(h: Harness, user: str, message: dict[str, Any], channel: str) -> dict[str, Any]:
    button = next(e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"])
    opened = len(h.fake.open_views(user))
    h.sender.block_action(button["action_id"], button["value"], user_id=user, channel_id=channel, message=message,
                          block_id="checkin_actions")
    h.wait()
    views = h.fake.open_views(user)
    assert len(views) == opened + 1, h.fake.responses(h.sender.last_response_url)
    return views[-1]["view"]


def test_a_check_in_from_setup_to_summary(hc: Harness, clock: FrozenClock) -> None:
    h = hc
    cid = setup_partnership(h)
    # An owner sets the schedule up in the form.
    h.command("checkin setup", channel=cid)
    form = h.fake.open_views(ALICE)[-1]["view"]
    assert form["callback_id"] == "checkin_setup"
    status, ack = h.sender.submit_view(form, setup_values(), user_id=ALICE)
    h.wait()
    assert status == 200 and not ack
    told = flatten(h.fake.responses(h.sender.last_response_url))
    assert "Check-ins for *Acme*: Mon, Wed at 09:30 (Europe/Berlin). Next: Mon 02 Mar 2026 09:30 CET" in told
    overview = h.command("checkin", channel=cid, user=CAROL).text
    assert "Mon, Wed at 09:30" in overview and "Mon 02 Mar 2026 09:30 CET" in overview
    assert f"<@{CAROL}>" in overview and "What do you need from us?" in overview

    # At 09:30 Berlin time the prompt is posted with an Answer button.
    clock.set(berlin(2026, 3, 2, 9, 29))
    h.tick()
    assert not [m for m in h.fake.messages(cid) if m.get("text", "").startswith("Check-in time")]
    clock.set(berlin(2026, 3, 2, 9, 30))
    h.tick()
    prompt = prompt_message(h, cid)
    assert "please answer by *13:30 CET*" in flatten(prompt) and "What moved?" in flatten(prompt)

    # Bob answers through the modal; his answers appear in the prompt's thread.
    view = click_answer(h, BOB, prompt, cid)
    assert [b["label"]["text"] for b in view["blocks"] if b["type"] == "input"] == [
        "What moved?", "Any blockers?", "What do you need from us?"]
    status, ack = h.sender.submit_view(view, answer_values("pilot live", "legal review", ""), user_id=BOB)
    h.wait()
    assert status == 200 and not ack
    h.tick()  # the scheduler posts the reply (the bot wakes it at once)
    [reply] = h.fake.replies(cid, prompt["ts"])
    assert f"<@{BOB}> answered" in flatten(reply) and "legal review" in flatten(reply)

    # He edits them: the same reply is updated.
    view = click_answer(h, BOB, prompt, cid)
    assert view["blocks"][1]["element"]["initial_value"] == "pilot live"
    h.sender.submit_view(view, answer_values("pilot live in 3 regions", "legal review", ""), user_id=BOB)
    h.wait()
    h.tick()
    [reply] = h.fake.replies(cid, prompt["ts"])
    assert "pilot live in 3 regions" in flatten(reply) and reply.get("edited")

    # Halfway, those who have not answered get one private reminder.
    clock.set(berlin(2026, 3, 2, 11, 30))
    h.tick()
    clock.set(berlin(2026, 3, 2, 12, 0))
    h.tick()
    assert [len(h.fake.dm_messages(u)) for u in (ALICE, BOB, CAROL)] == [1, 0, 1]
    reminder = h.fake.dm_messages(CAROL)[0]
    assert "closes at *13:30 CET*" in flatten(reminder)
    view = click_answer(h, CAROL, reminder, reminder["channel"])  # the reminder's own Answer button
    h.sender.submit_view(view, answer_values("contract draft", "none", "the API keys"), user_id=CAROL)
    h.wait()

    # At the close the prompt becomes the summary, in place.
    clock.set(berlin(2026, 3, 2, 13, 30))
    h.tick()
    summary = flatten(prompt_message(h, cid))
    assert "2 of 3 answered (67%)" in summary and f"*Missing:* <@{ALICE}>" in summary
    ids = answer_ids(h)
    assert listed_by_kind(prompt_message(h, cid)) == {  # Carol's "none" is no blocker
        "Blockers": [(f"<@{BOB}>: legal review _(Any blockers?)_", "Log as issue", f"{ids[BOB]}:1")],
        "Needs from the partner": [(f"<@{CAROL}>: the API keys _(What do you need from us?)_", "Log as issue",
                                    f"{ids[CAROL]}:2")],
    }
    assert len(h.fake.replies(cid, prompt["ts"])) == 2
    history = h.command("checkin history", channel=cid).text
    assert "Monday 2 March* (closed): 2 of 3 answered (67%)" in history

    # Answering after the close is refused in the form, with the reason.
    late_view = h.fake.open_views(BOB)[-1]["view"]
    status, ack = h.sender.submit_view(late_view, answer_values("late"), user_id=BOB)
    assert ack["response_action"] == "errors" and "closed at" in ack["errors"]["q0"]


def test_setup_form_refuses_bad_input_field_by_field(hc: Harness) -> None:
    h = hc
    cid = setup_partnership(h)
    h.command("checkin setup", channel=cid)
    form = h.fake.open_views(ALICE)[-1]["view"]
    status, ack = h.sender.submit_view(form, setup_values(
        weekdays={"type": "checkboxes", "selected_options": []},
        questions={"type": "plain_text_input", "value": "\n".join(f"Question {i}?" for i in range(8))},
        participant_mode={"type": "radio_buttons", "selected_option": {"value": "chosen"}},
        timezone={"type": "plain_text_input", "value": "Berlin"},
    ), user_id=ALICE)
    assert status == 200 and ack["response_action"] == "errors"
    errors = ack["errors"]
    assert "at least one weekday" in errors["weekdays"]
    assert "limit is 6" in errors["questions"]
    assert "at least one participant" in errors["participants"]
    assert "'Berlin' is not a time zone" in errors["timezone"]
    assert "has no check-in schedule yet" in h.command("checkin", channel=cid).text


def test_people_and_permissions(hc: Harness, clock: FrozenClock) -> None:
    h = hc
    cid = setup_partnership(h)
    assert "Only owners of *Acme* can set up its check-ins" in h.command("checkin setup", channel=cid, user=BOB).text
    assert h.fake.open_views(BOB) == []
    assert "Only owners" in h.command("checkin schedule mon 09:30", channel=cid, user=BOB).text
    told = h.command("checkin schedule mon,wed,fri 10:00 America/New_York", channel=cid).text
    assert "Mon, Wed, Fri at 10:00 (America/New_York)" in told
    assert "works inside a partnership channel" in h.command("checkin").text
    assert "`frob` is not a check-in command" in h.command("checkin frob", channel=cid).text
    assert "Only people in the *Acme* partnership" in h.command("checkin now", channel=cid, user=DAN).text
    assert "until Thu 24 Dec 2026" in h.command("away until 2026-12-24", user=CAROL).text
    said = h.command("checkin now", channel=cid, user=BOB)
    assert "Starting a check-in" in said.text
    h.tick()
    prompt = prompt_message(h, cid)
    assert f"<@{CAROL}>" not in flatten(prompt) and "1 away" in flatten(prompt)
    assert "Welcome back" in h.command("back", user=CAROL).text


def test_a_click_that_slack_lets_expire_is_explained(hc: Harness) -> None:
    h = hc
    cid = setup_partnership(h)
    h.command("checkin now", channel=cid)
    h.tick()
    prompt = prompt_message(h, cid)
    h.fake.trigger_ttl = 0  # Slack took too long to hand us the click
    button = next(e for b in prompt["blocks"] if b["type"] == "actions" for e in b["elements"])
    h.sender.block_action(button["action_id"], button["value"], user_id=BOB, channel_id=cid, message=prompt)
    h.wait()
    told = flatten(h.fake.responses(h.sender.last_response_url))
    assert "expired_trigger_id" in told and "please try again" in told


def test_a_channel_archived_in_slack_stops_the_check_ins_until_it_is_unarchived(
    hc: Harness, clock: FrozenClock,
) -> None:
    h = hc
    cid = setup_partnership(h)
    h.command("checkin schedule daily 09:30", channel=cid)
    with h.fake.lock:
        h.fake.channels[cid].is_archived = True
    status, _ = h.sender.event({"type": "channel_archive", "channel": cid, "user": BOB})
    h.wait()
    assert status == 200
    h.tick()  # the owner's notice
    [notice] = h.fake.dm_messages(ALICE)
    assert "was archived, so Partnerbot stopped its scheduled check-ins" in flatten(notice)
    clock.set(berlin(2026, 3, 2, 9, 30))
    h.tick()
    assert not [m for m in h.fake.messages(cid) if m.get("text", "").startswith("Check-in time")]
    assert len(h.fake.dm_messages(ALICE)) == 1  # no failure notices on top
    assert f"<@{BOB}> archived the channel" in h.command("info", channel=cid).text

    with h.fake.lock:
        h.fake.channels[cid].is_archived = False
    h.sender.event({"type": "channel_unarchive", "channel": cid, "user": BOB})
    h.wait()
    clock.set(berlin(2026, 3, 3, 9, 30))
    h.tick()
    assert [m for m in h.fake.messages(cid) if m.get("text", "").startswith("Check-in time")]


def test_the_questions_form_shows_errors_under_its_field_and_saves_only_for_owners(hc: Harness) -> None:
    h = hc
    cid = setup_partnership(h)
    h.command("checkin schedule mon 09:30", channel=cid)
    h.command("checkin questions", channel=cid)
    [opened] = h.fake.open_views(ALICE)
    form = opened["view"]

    status, ack = h.sender.submit_view(form, questions(*(f"Question {i}?" for i in range(7))), user_id=ALICE)
    h.wait()
    assert status == 200 and ack["response_action"] == "errors"
    assert "7 questions; the limit is 6" in ack["errors"]["questions"]  # the form stays open with what was typed

    status, ack = h.sender.submit_view(form, questions("What shipped?", "What blocks you?"), user_id=BOB)
    h.wait()
    assert not ack  # closed; saving re-checks who may, and refuses privately
    assert "Only owners of *Acme*" in h.dm_text(BOB)
    h.fake.drop_answers("chat.postMessage")  # the direct message is sent, its answer lost: sent once all the same
    status, ack = h.sender.submit_view(form, questions("What shipped?", "What blocks you?"), user_id=ALICE)
    h.wait()
    assert "ask 2 question(s)" in h.dm_text(ALICE) and len(h.fake.dm_messages(ALICE)) == 1


def test_question_kinds_are_set_in_the_questions_form_and_a_round_keeps_the_kinds_it_was_asked_with(
    hc: Harness, clock: FrozenClock,
) -> None:
    h = hc
    cid = setup_partnership(h)
    h.command("checkin schedule mon 09:30", channel=cid)
    h.command("checkin questions", channel=cid)
    form = h.fake.open_views(ALICE)[-1]["view"]
    [field] = [b for b in form["blocks"] if b.get("block_id") == "questions"]
    assert field["element"]["initial_value"] == ("What moved since the last check-in?\nWhat is next?\n"
                                                 "Blocker: Any blockers?\nNeed: What do we need from the partner?")
    assert "Start a line with Blocker:" in field["hint"]["text"] and "Need:" in field["hint"]["text"]

    # A kind without its question is refused under the field; the form stays open with what was typed.
    _, ack = h.sender.submit_view(form, questions("What shipped?", "Blocker:"), user_id=ALICE)
    assert ack["response_action"] == "errors" and "Write the question after 'Blocker:'" in ack["errors"]["questions"]
    _, ack = h.sender.submit_view(form, questions(
        "What shipped?", "need: Which sandbox access is missing?", "BLOCKER: What is in your way?", "Any risks?",
    ), user_id=ALICE)
    h.wait()
    assert not ack
    assert "ask 4 question(s) (1 about blockers, 1 about needs from the partner" in h.dm_text(ALICE)
    h.command("checkin schedule tue,wed 10:00", channel=cid)  # the quick schedule keeps the questions and kinds
    overview = h.command("checkin", channel=cid).text
    assert ("1. What shipped?\n2. Which sandbox access is missing? _(need from the partner)_\n"
            "3. What is in your way? _(blocker)_\n4. Any risks?") in overview

    # A round, answered; the questions change while it is open: it keeps the kinds it was asked with.
    h.command("checkin now", channel=cid, user=BOB)
    h.tick()
    prompt = prompt_message(h, cid)
    for user, answers in ((BOB, ("demo done", "staging VPN", "waiting on <!channel> legal", "none")),
                          (CAROL, ("", "N/A", "security review", "vendor delay"))):
        view = click_answer(h, user, prompt, cid)
        h.sender.submit_view(view, answer_values(*answers), user_id=user)
        h.wait()
    h.command("checkin questions", channel=cid)
    h.sender.submit_view(h.fake.open_views(ALICE)[-1]["view"], questions("What shipped?", "Anything else?"),
                         user_id=ALICE)
    h.wait()
    assert "none about blockers or needs" in h.dm_text(ALICE)
    clock.set(berlin(2026, 3, 2, 12, 0))  # the 4-hour window of the 08:00 check-in is over
    h.tick()
    summary = prompt_message(h, cid)
    assert summary["text"].startswith("Check-in closed")
    ids = answer_ids(h)
    assert listed_by_kind(summary) == {
        "Blockers": [
            (f"<@{BOB}>: waiting on &lt;!channel&gt; legal _(What is in your way?)_", "Log as issue", f"{ids[BOB]}:2"),
            (f"<@{CAROL}>: security review _(What is in your way?)_", "Log as issue", f"{ids[CAROL]}:2"),
        ],
        "Needs from the partner": [
            (f"<@{BOB}>: staging VPN _(Which sandbox access is missing?)_", "Log as issue", f"{ids[BOB]}:1"),
        ],
    }
    assert "vendor delay" not in flatten(summary)  # a plain question's answer stays in the thread
    assert "vendor delay" in "\n".join(flatten(m) for m in h.fake.replies(cid, prompt["ts"]))
