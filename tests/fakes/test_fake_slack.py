"""The fake Slack answers like Slack where the app relies on it (through the real WebClient)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakes import FakeSlack


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    fake.add_user("UANA", "ana")
    yield fake
    fake.stop()


def client(fake: FakeSlack, token: str = "xoxb-test") -> WebClient:
    return WebClient(token=token, base_url=fake.base_url, retry_handlers=[])


def error_of(call: object) -> str:
    assert callable(call)
    with pytest.raises(SlackApiError) as err:
        call()
    return str(err.value.response["error"])


def test_a_call_missing_a_required_argument_is_refused(fake: FakeSlack) -> None:
    c = client(fake)
    with pytest.raises(SlackApiError) as err:
        c.api_call("conversations.invite", params={"channel": "C1"})
    assert err.value.response["error"] == "invalid_arguments"
    assert "users" in err.value.response["response_metadata"]["messages"][0]
    assert error_of(lambda: c.api_call("chat.postMessage", json={"text": "hi"})) == "invalid_arguments"


def test_bad_tokens_unknown_methods_and_state_errors(fake: FakeSlack) -> None:
    assert error_of(lambda: client(fake, "xoxb-wrong").auth_test()) == "invalid_auth"
    c = client(fake)
    assert error_of(lambda: c.api_call("no.such.method")) == "unknown_method"
    channel = c.conversations_create(name="partner-acme")["channel"]["id"]
    assert error_of(lambda: c.conversations_create(name="partner-acme")) == "name_taken"
    assert error_of(lambda: c.conversations_create(name="Has Spaces")) == "invalid_name_specials"
    c.conversations_invite(channel=channel, users="UANA")
    assert error_of(lambda: c.conversations_invite(channel=channel, users="UANA")) == "already_in_channel"
    assert error_of(lambda: c.chat_postMessage(channel="CNOPE", text="x")) == "channel_not_found"
    outsider = fake.add_channel("elsewhere")
    assert error_of(lambda: c.chat_postMessage(channel=outsider, text="x")) == "not_in_channel"
    ts = c.chat_postMessage(channel=channel, text="x")["ts"]
    c.pins_add(channel=channel, timestamp=ts)
    assert error_of(lambda: c.pins_add(channel=channel, timestamp=ts)) == "already_pinned"
    c.conversations_archive(channel=channel)
    assert error_of(lambda: c.chat_postMessage(channel=channel, text="x")) == "is_archived"


def test_trigger_ids_work_once_and_expire(fake: FakeSlack) -> None:
    c = client(fake)
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Hi"}, "blocks": []}
    trigger = fake.issue_trigger("UANA")
    c.views_open(trigger_id=trigger, view=view)
    assert error_of(lambda: c.views_open(trigger_id=trigger, view=view)) == "exchanged_trigger_id"
    assert error_of(lambda: c.views_open(trigger_id="made-up", view=view)) == "invalid_trigger_id"
    late = fake.issue_trigger("UANA")
    fake.expire_triggers()
    assert error_of(lambda: c.views_open(trigger_id=late, view=view)) == "expired_trigger_id"
    assert [o["user"] for o in fake.open_views("UANA")] == ["UANA"]


def test_rate_limit_answers_429_with_an_integer_retry_after(fake: FakeSlack) -> None:
    c = client(fake)
    channel = c.conversations_create(name="busy")["channel"]["id"]
    fake.rate_limit(per_channel_interval=1.0, workspace_per_minute=100)
    c.chat_postMessage(channel=channel, text="first")
    with pytest.raises(SlackApiError) as err:
        c.chat_postMessage(channel=channel, text="second, too soon")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "1"
    assert len(fake.messages(channel)) == 1


def test_history_shows_metadata_only_when_asked_and_hides_thread_replies(fake: FakeSlack) -> None:
    c = client(fake)
    channel = c.conversations_create(name="meta")["channel"]["id"]
    meta = {"event_type": "partnerbot_occurrence", "event_payload": {"occurrence_key": "k"}}
    ts = c.chat_postMessage(channel=channel, text="parent", metadata=meta)["ts"]
    c.chat_postMessage(channel=channel, text="reply", thread_ts=ts)
    plain = c.conversations_history(channel=channel)["messages"]
    assert [m["text"] for m in plain] == ["parent"] and "metadata" not in plain[0]
    full = c.conversations_history(channel=channel, include_all_metadata=True)["messages"]
    assert full[0]["metadata"] == meta
    assert [m["text"] for m in c.conversations_replies(channel=channel, ts=ts)["messages"]] == ["parent", "reply"]


def test_conversations_list_pages_and_shows_private_channels_only_to_members(fake: FakeSlack) -> None:
    c = client(fake)
    public = [fake.add_channel(f"pub-{i}") for i in range(3)]
    mine = c.conversations_create(name="mine", is_private=True)["channel"]["id"]
    fake.add_channel("not-mine", is_private=True, members=["UANA"])
    gone = fake.add_channel("gone", is_archived=True)
    seen: list[str] = []
    cursor = None
    while True:
        page = c.conversations_list(types="public_channel,private_channel", limit=2, cursor=cursor)
        assert len(page["channels"]) <= 2
        seen += [ch["id"] for ch in page["channels"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert seen == [*public, mine, gone]
    listed = c.conversations_list(types="public_channel,private_channel", exclude_archived=True)["channels"]
    assert [ch["id"] for ch in listed] == [*public, mine] and listed[-1]["creator"] == "UBOT"
    assert [ch["id"] for ch in c.conversations_list()["channels"]] == [*public, gone]  # public only by default
    assert error_of(lambda: c.conversations_list(limit=1000)) == "invalid_limit"


def test_a_dropped_answer_takes_effect_but_never_reaches_the_caller(fake: FakeSlack) -> None:
    c = client(fake)
    channel = c.conversations_create(name="drops")["channel"]["id"]
    fake.drop_answers("chat.postMessage")
    with pytest.raises(ConnectionError):
        c.chat_postMessage(channel=channel, text="sent")
    [(method, answer)] = fake.dropped
    assert method == "chat.postMessage" and [m["ts"] for m in fake.messages(channel)] == [answer["ts"]]
    c.chat_postMessage(channel=channel, text="answered")  # only the next call was dropped
    assert len(fake.messages(channel)) == 2


def test_people_joining_and_leaving_queue_the_events_slack_would_send(fake: FakeSlack) -> None:
    fake.add_user("ULI", "li", email="li@partner.com", team_id="T0PARTNER")
    c = client(fake)
    channel = c.conversations_create(name="partner-acme", is_private=True)["channel"]["id"]
    c.conversations_invite(channel=channel, users="UANA")
    c.conversations_inviteShared(channel=channel, emails="li@partner.com")
    assert fake.accept_shared_invite("li@partner.com", "ULI") == channel
    c.conversations_kick(channel=channel, user="UANA")
    fake.join(channel, "UANA", inviter="ULI")
    fake.join(channel, "UANA")  # already in: no event
    events = fake.take_events()
    assert [(e["type"], e["user"], e.get("inviter")) for e in events] == [
        ("member_joined_channel", fake.bot_user_id, None), ("member_joined_channel", "UANA", fake.bot_user_id),
        ("member_joined_channel", "ULI", None), ("member_left_channel", "UANA", None),
        ("member_joined_channel", "UANA", "ULI")]
    assert {e["channel"] for e in events} == {channel} and {e["channel_type"] for e in events} == {"G"}
    assert [float(e["event_ts"]) for e in events] == sorted({float(e["event_ts"]) for e in events})
    assert fake.take_events() == []
    li = c.users_info(user="ULI")["user"]
    assert li["is_external"] and li["team_id"] == "T0PARTNER" and c.conversations_info(channel=channel)[
        "channel"]["is_ext_shared"]
