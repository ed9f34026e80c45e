"""Pulse surveys end to end: signed requests to the real HTTP endpoint, the scheduler driven with a frozen clock,
and what people see in the fake Slack (one fake for the module)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.conftest import (
    ALICE,
    BOB,
    CAROL,
    DAN,
    PARTNER_PAT,
    PARTNER_TEAM,
    Harness,
    flatten,
    new_fake,
    start_harness,
)
from tests.fakes import FakeSlack
from tests.support.clock import FrozenClock

PAT2, PAT3 = "UPATTWO", "UPATTHREE"
OURS, PARTNERS = [ALICE, BOB, CAROL], [PARTNER_PAT, PAT2, PAT3]


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo("Europe/Berlin"))


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSlack]:
    fake = new_fake()
    for user in (PAT2, PAT3):
        fake.add_user(user, user.lower(), email=f"{user.lower()}@partner.com", team_id=PARTNER_TEAM)
    yield fake
    fake.stop()


@pytest.fixture
def clock(fake: FakeSlack) -> FrozenClock:
    clock = FrozenClock(berlin(2026, 3, 2, 8, 0))  # Monday morning
    fake.clock = clock.epoch
    return clock


@pytest.fixture
def h(fake: FakeSlack, tmp_path: Any, clock: FrozenClock) -> Iterator[Harness]:
    harness = start_harness(fake, tmp_path, clock=clock)
    yield harness
    harness.close()


def partnership(h: Harness, name: str) -> str:
    h.command(f"new {name}")
    cid = str(h.channel(f"partner-{name.lower()}").id)
    for user in [BOB, CAROL, *PARTNERS]:
        h.command(f"add <@{user}|{user.lower()}>", channel=cid)
    return cid


def setup_values(**override: Any) -> dict[str, Any]:
    def opt(value: str) -> dict[str, Any]:
        return {"type": "static_select", "selected_option": {"value": value}}

    def radio(value: str) -> dict[str, Any]:
        return {"type": "radio_buttons", "selected_option": {"value": value}}

    values: dict[str, Any] = {
        "pulse_cadence": opt("monthly"), "pulse_every_weeks": {"type": "plain_text_input", "value": "4"},
        "pulse_nth": opt("1"), "pulse_weekday": opt("tue"),
        "local_time": {"type": "timepicker", "selected_time": "10:00"},
        "timezone": {"type": "plain_text_input", "value": "Europe/Berlin"},
        "pulse_open_days": opt("5"), "pulse_anonymous": radio("yes"), "pulse_audience": radio("both"),
        "questions": {"type": "plain_text_input", "value": "How much do we trust each other?\n"
                      "How well do we communicate?\nOpen: What one thing should change?"},
    }
    values.update(override)
    return {block: {block: value} for block, value in values.items()}


def survey_values(trust: int, talk: int, change: str = "") -> dict[str, Any]:
    def radio(n: int) -> dict[str, Any]:
        return {"type": "radio_buttons", "selected_option": {"value": str(n)}}

    return {"pq0": {"pq0": radio(trust)}, "pq1": {"pq1": radio(talk)},
            "pq2": {"pq2": {"type": "plain_text_input", "value": change}}}


def survey_message(h: Harness, cid: str) -> dict[str, Any]:
    [m] = [m for m in h.fake.messages(cid) if m.get("text", "").startswith("Partnership pulse")]
    return m


def take(h: Harness, user: str, message: dict[str, Any], channel: str, values: dict[str, Any]) -> tuple[int, Any]:
    button = next(e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"])
    opened = len(h.fake.open_views(user))
    h.sender.block_action(button["action_id"], button["value"], user_id=user, channel_id=channel, message=message,
                          block_id="pulse_actions")
    h.wait()
    views = h.fake.open_views(user)
    assert len(views) == opened + 1, h.fake.responses(h.sender.last_response_url)
    status, ack = h.sender.submit_view(views[-1]["view"], values, user_id=user)
    h.wait()
    return status, ack


def test_a_pulse_round_from_setup_to_results_with_a_perception_gap(
    h: Harness, clock: FrozenClock, caplog: pytest.LogCaptureFixture,
) -> None:
    cid = partnership(h, "Initech")
    h.command("pulse setup", channel=cid)
    form = h.fake.open_views(ALICE)[-1]["view"]
    assert form["callback_id"] == "pulse_setup"
    status, ack = h.sender.submit_view(form, setup_values(), user_id=ALICE)
    h.wait()
    assert status == 200 and not ack
    told = flatten(h.fake.responses(h.sender.last_response_url))
    assert "monthly on the first Tuesday at 10:00 (Europe/Berlin), 3 question(s). Next round: Tue 03 Mar 2026 " \
           "10:00 CET" in told

    clock.set(berlin(2026, 3, 3, 10, 0))
    h.tick()
    survey = survey_message(h, cid)
    assert "Take the survey" in flatten(survey) and "Anonymous" in flatten(survey)

    # Both sides answer; Bob changes his mind, and his second answer replaces the first.
    caplog.set_level(logging.DEBUG)
    for user in [ALICE, PARTNER_PAT, PAT2, PAT3]:
        status, ack = take(h, user, survey, cid, survey_values(5 if user == ALICE else 2, 4, f"idea of {user}"))
        assert status == 200 and not ack
    take(h, BOB, survey, cid, survey_values(1, 1))
    take(h, BOB, survey, cid, survey_values(5, 4, "weekly sync"))
    assert "Your answers are replaced" in h.dm_text(BOB)
    assert caplog.records and not [r for r in caplog.records if "weekly sync" in r.getMessage()]  # in no log line
    caplog.set_level(logging.WARNING)
    assert "Answering again replaces them" in h.dm_text(PAT2)

    # A day before the close, Carol (asked, not answered) gets the one reminder; those who answered do not.
    clock.set(berlin(2026, 3, 7, 10, 0))
    h.tick()
    assert "Reminder: the Initech partnership pulse" in h.dm_text(CAROL)
    assert "Reminder" not in h.dm_text(BOB) and "Reminder" not in h.dm_text(PARTNER_PAT)
    reminder = next(m for m in h.fake.dm_messages(CAROL) if m.get("text", "").startswith("Reminder"))
    take(h, CAROL, reminder, str(h.fake.dm_channel(CAROL).id), survey_values(5, 4))  # type: ignore[union-attr]

    clock.set(berlin(2026, 3, 8, 10, 0))
    h.tick()
    results = survey_message(h, cid)
    assert results["ts"] == survey["ts"]
    text = flatten(results)
    assert "Our side: 3 of 3 answered · Partner's side: 3 of 3 answered" in text
    assert "*3.5* / 5 overall (6 answer(s))" in text and "Our side 5.0 · Partner's side 2.0" in text
    assert "The two organizations see the partnership differently (a gap of 3.0)" in text
    assert "*4.0* / 5 overall" in text  # communication: both sides agree
    thread = flatten(h.fake.replies(cid, survey["ts"]))
    assert "weekly sync" in thread and "idea of UPATTWO" in thread and "<@" not in thread

    # The overview shows the schedule, the next round and the last results.
    overview = h.command("pulse", channel=cid, user=PAT3).text
    assert "Next round:* Tue 07 Apr 2026 10:00 CEST" in overview and "a gap of 3.0" in overview


def test_refusals_are_private_and_say_what_to_do(h: Harness) -> None:
    cid = partnership(h, "Umbrella")
    said = h.command("pulse setup", channel=cid, user=BOB)
    assert "Only owners of *Umbrella* can set up its pulse survey" in said.text
    said = h.command("pulse now", channel=cid, user=PARTNER_PAT)
    assert "Only owners" in said.text
    assert "is not a pulse command" in h.command("pulse sometimes", channel=cid).text

    h.command("pulse setup", channel=cid)
    form = h.fake.open_views(ALICE)[-1]["view"]

    def errors(**override: Any) -> dict[str, str]:
        status, ack = h.sender.submit_view(form, setup_values(**override), user_id=ALICE)
        h.wait()
        assert status == 200 and ack["response_action"] == "errors"
        return dict(ack["errors"])

    nine = "\n".join(f"Question {i}?" for i in range(9))
    assert "There are 9 questions; the limit is 8" in errors(
        questions={"type": "plain_text_input", "value": nine})["questions"]
    long = errors(questions={"type": "plain_text_input", "value": "Why " + "x" * 160})
    assert "is 164 characters long; the limit is 150" in long["questions"]
    assert "not a time zone" in errors(timezone={"type": "plain_text_input", "value": "Mars/Olympus"})["timezone"]
    bad_weeks = errors(pulse_cadence={"type": "static_select", "selected_option": {"value": "weeks"}},
                       pulse_every_weeks={"type": "plain_text_input", "value": "0"})
    assert "from 1 to 12" in bad_weeks["pulse_every_weeks"]
    too_long = errors(pulse_cadence={"type": "static_select", "selected_option": {"value": "weeks"}},
                      pulse_every_weeks={"type": "plain_text_input", "value": "1"},
                      pulse_open_days={"type": "static_select", "selected_option": {"value": "7"}})
    assert "at most 6 days" in too_long["pulse_open_days"]
    assert "has no pulse survey yet" in h.command("pulse", channel=cid).text  # nothing was saved
    assert "Only people in the *Umbrella* partnership" in h.command("pulse", channel=cid, user=DAN).text
