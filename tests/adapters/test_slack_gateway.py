"""The gateway against the fake Slack: invitations in batches, history read page by page, and keep-alive
connections."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from adapters.slack import (
    INVITE_BATCH,
    ConnectionPool,
    KeepAliveWebClient,
    SlackError,
    SlackGateway,
    keyed_metadata,
    make_client,
)
from tests.fakes import FakeSlack

BOT = "UBOT"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSlack]:
    fake = FakeSlack(bot_user_id=BOT).start()
    yield fake
    fake.stop()


@pytest.fixture
def slack(fake: FakeSlack) -> Iterator[SlackGateway]:
    """The gateway as the interactive paths use it: slack_sdk's retry handlers attached."""
    client = make_client("xoxb-test", fake.base_url)
    yield SlackGateway(client)
    client.close()


def texts(fake: FakeSlack, channel: str) -> list[str]:
    return [m["text"] for m in fake.messages(channel)]


def test_invites_go_in_batches_and_one_bad_id_does_not_keep_the_others_out(
    fake: FakeSlack, slack: SlackGateway
) -> None:
    people = [f"U{i:04d}" for i in range(2 * INVITE_BATCH + 30)]
    for user in people:
        fake.add_user(user, user.lower())
    channel = slack.create_channel("partner-big", is_private=False)["id"]
    refused = slack.invite(channel, [*people, "UGHOST", people[0]])
    assert refused == [("UGHOST", "user_not_found")]
    assert set(people) <= fake.channels[channel].members
    assert all(len(args["users"].split(",")) <= INVITE_BATCH for m, args in fake.calls if m == "conversations.invite")


# -- history, lazily ---------------------------------------------------------------------------------------
def test_history_is_read_page_by_page_only_as_far_as_needed(fake: FakeSlack, slack: SlackGateway) -> None:
    channel = fake.add_channel("busy", members=[BOT])
    first = slack.post(channel, text="first", metadata=keyed_metadata("first"))
    for i in range(5):
        slack.post(channel, text=f"chatter {i}")
    slack.post(channel, text="newest", metadata=keyed_metadata("newest"))

    def pages_read(**find: str | int) -> tuple[str | None, int]:
        before = fake.call_count("conversations.history")
        found = slack.find_keyed(channel, limit=2, **find)
        return (found or {}).get("text"), fake.call_count("conversations.history") - before

    assert pages_read(key="newest") == ("newest", 1)  # newest first: the first page has it
    assert pages_read(key="first") == ("first", 4)  # seven messages, two a page
    assert pages_read(key="first", oldest=first) == (None, 3)  # only messages after `oldest`
    assert pages_read(key="first", max_pages=2) == (None, 2)


# -- keep-alive connections ----------------------------------------------------------------------------------
def test_calls_reuse_keep_alive_connections_across_threads(fake: FakeSlack, slack: SlackGateway) -> None:
    before = fake.connections
    for _ in range(10):
        slack.auth_test()
    assert fake.connections - before == 1
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = set(pool.map(lambda _: slack.auth_test()["user_id"], range(200)))
    assert ids == {BOT}
    assert fake.connections - before <= 8


def test_a_connection_closed_by_the_server_or_idle_too_long_is_not_used_again(fake: FakeSlack) -> None:
    now = [0.0]
    pool = ConnectionPool(idle_seconds=30, monotonic=lambda: now[0])
    # No retry handlers: a retry would hide a failed reuse.
    client = KeepAliveWebClient(token="xoxb-test", base_url=fake.base_url, retry_handlers=[], pool=pool)
    slack = SlackGateway(client)
    before = fake.connections
    try:
        slack.auth_test()
        fake.close_connections()
        assert slack.auth_test()["user_id"] == BOT
        assert fake.connections - before == 2
        now[0] = 29.0
        slack.auth_test()
        assert fake.connections - before == 2
        now[0] = 60.0
        slack.auth_test()
        assert fake.connections - before == 3
    finally:
        client.close()


def test_errors_keep_their_status_and_retry_after_over_a_reused_connection(fake: FakeSlack) -> None:
    client = make_client("xoxb-test", fake.base_url, retries=False)
    slack = SlackGateway(client)
    channel = fake.add_channel("errors", members=[BOT])
    before = fake.connections
    try:
        fake.fail("chat.postMessage", "ratelimited", status=429, headers={"Retry-After": "7"})
        with pytest.raises(SlackError) as err:
            slack.post(channel, text="x")
        assert (err.value.code, err.value.status, err.value.retry_after) == ("ratelimited", 429, 7.0)
        fake.fail("chat.postMessage", "internal_error", status=500)
        with pytest.raises(SlackError) as err:
            slack.post(channel, text="x")
        assert (err.value.code, err.value.status) == ("internal_error", 500)
        with pytest.raises(SlackError) as err:
            slack.post("CNOPE", text="x")
        assert (err.value.code, err.value.status) == ("channel_not_found", 200)
        assert slack.post(channel, text="fine") and texts(fake, channel) == ["fine"]
        assert fake.connections - before == 1
    finally:
        client.close()
