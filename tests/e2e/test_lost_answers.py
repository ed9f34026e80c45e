"""Calls that must happen once, when Slack's answer is lost on the way back (the call took effect, then
the connection dropped) or Slack fails with a 5xx: the app finds what it made instead of making it twice.
One fake Slack and one app for the module; each test uses its own partnership."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import select

from models import Partnership
from tests.e2e.conftest import ALICE, TEAM, Harness, flatten, start_harness
from tests.fakes import FakeSlack


@pytest.fixture(scope="module")
def h(tmp_path_factory: Any) -> Iterator[Harness]:
    fake = FakeSlack(bot_token="xoxb-test", team_id=TEAM, bot_user_id="UBOT").start()
    fake.add_user(ALICE, "alice", email="alice@ours.com", team_id=TEAM)
    harness = start_harness(fake, tmp_path_factory.mktemp("lost-answers"))
    yield harness
    harness.server.close()
    harness.executor.shutdown(wait=True)
    harness.bot.close()
    fake.stop()


def channels_named(h: Harness, prefix: str) -> list[str]:
    return [c.name for c in h.fake.channels.values() if c.name.startswith(prefix)]


def charter_ts(h: Harness, name: str) -> str | None:
    with h.bot.services.uow() as s:
        return s.exec(select(Partnership).where(Partnership.name == name)).one().charter_ts


def test_a_lost_answer_to_channel_creation_adopts_the_channel_instead_of_making_a_second(h: Harness) -> None:
    h.fake.drop_answers("conversations.create")
    said = h.command("new Lost Channel")
    assert channels_named(h, "partner-lost-channel") == ["partner-lost-channel"]
    ch = h.channel("partner-lost-channel")
    assert "is set up" in said.text and f"<#{ch.id}>" in said.text and ":warning:" not in said.text
    assert ALICE in ch.members and len(ch.pins) == 1


def test_a_channel_slack_made_but_does_not_list_yet_is_taken_on_the_next_try_not_duplicated(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(h.bot.services.slack, "sleep", lambda seconds: None)
    h.fake.drop_answers("conversations.create")
    h.fake.list_late("partner-slow-list", times=100)
    said = h.command("new Slow List")
    assert "may have created the channel for *Slow List* but did not confirm it" in said.text
    assert "Try again in a minute" in said.text
    assert channels_named(h, "partner-slow-list") == ["partner-slow-list"]  # not partner-slow-list-2
    h.fake.list_late("partner-slow-list", times=0)
    said = h.command("new Slow List")
    assert channels_named(h, "partner-slow-list") == ["partner-slow-list"]
    ch = h.channel("partner-slow-list")
    assert "is set up" in said.text and f"<#{ch.id}>" in said.text and len(ch.pins) == 1


def test_a_lost_answer_to_the_charter_post_leaves_one_charter_pinned_once(h: Harness) -> None:
    h.fake.drop_answers("chat.postMessage")
    said = h.command("new Charter Once")
    ch = h.channel("partner-charter-once")
    [charter] = h.fake.messages(ch.id)
    assert "Partnership charter: Charter Once" in flatten(charter)
    assert ch.pins == [charter["ts"]] == [charter_ts(h, "Charter Once")]
    assert "is set up" in said.text and ":warning:" not in said.text


def test_a_server_error_slack_did_not_act_on_still_posts_the_charter_once(h: Harness) -> None:
    h.fake.fail("chat.postMessage", "internal_error", status=500)
    said = h.command("new Five Hundred")
    ch = h.channel("partner-five-hundred")
    [charter] = h.fake.messages(ch.id)
    assert ch.pins == [charter["ts"]] and ":warning:" not in said.text


def test_a_lost_answer_to_the_closing_summary_posts_it_once_and_still_archives(h: Harness) -> None:
    h.command("new Closing Time")
    ch = h.channel("partner-closing-time")
    detail = h.bot.services.partnerships.by_channel(ch.id)
    assert detail is not None
    h.fake.drop_answers("chat.postMessage")
    # What the confirmation button of `/partner close` runs.
    outcome = h.bot.services.partnerships.close(partnership_id=detail.partnership.id or 0, actor=ALICE, reason="")
    summaries = [m for m in h.fake.messages(ch.id) if "Partnership closed: Closing Time" in flatten(m)]
    assert len(summaries) == 1 and ch.is_archived and outcome.warnings == []


def test_a_lost_answer_to_a_check_in_announcement_posts_it_once(h: Harness) -> None:
    h.command("new Announced")
    ch = h.channel("partner-announced")
    h.fake.drop_answers("chat.postMessage")
    said = h.command("checkin schedule mon 09:30 Europe/Berlin", channel=ch.id)
    assert "Check-ins for *Announced*" in said.text
    announcements = [m for m in h.fake.messages(ch.id) if "the check-ins" in flatten(m)]
    assert len(announcements) == 1 and f"<@{ALICE}> set up the check-ins" in flatten(announcements[0])
