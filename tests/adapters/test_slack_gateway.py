"""The gateway against the fake Slack: invitations in batches, calls that must happen once even when
Slack's answer is lost, history read page by page, and keep-alive connections."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from adapters.slack import (
    CREATE_LOOKUP_DELAYS,
    CREATION_UNCONFIRMED,
    INVITE_BATCH,
    ONCE_TRIES,
    ConnectionPool,
    KeepAliveWebClient,
    SlackError,
    SlackGateway,
    keyed_metadata,
    make_client,
    while_waiting,
)
from tests.fakes import FakeSlack

BOT = "UBOT"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSlack]:
    fake = FakeSlack(bot_user_id=BOT).start()
    yield fake
    fake.stop()


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def slack(fake: FakeSlack, slept: list[float]) -> Iterator[SlackGateway]:
    """The gateway as the interactive paths use it: slack_sdk's retry handlers attached; its waits are
    recorded, not slept."""
    client = make_client("xoxb-test", fake.base_url)
    yield SlackGateway(client, sleep=slept.append)
    client.close()


def texts(fake: FakeSlack, channel: str) -> list[str]:
    return [m["text"] for m in fake.messages(channel)]


def never_used(channel_id: str) -> bool:
    return False


def test_invites_go_in_batches_and_one_bad_id_does_not_keep_the_others_out(
    fake: FakeSlack, slack: SlackGateway
) -> None:
    people = [f"U{i:04d}" for i in range(2 * INVITE_BATCH + 30)]
    for user in people:
        fake.add_user(user, user.lower())
    channel = slack.create_channel("partner-big", is_private=False, in_use=never_used)["id"]
    refused = slack.invite(channel, [*people, "UGHOST", people[0]])
    assert refused == [("UGHOST", "user_not_found")]
    assert set(people) <= fake.channels[channel].members
    assert all(len(args["users"].split(",")) <= INVITE_BATCH for m, args in fake.calls if m == "conversations.invite")


# -- posted once ------------------------------------------------------------------------------------------
def test_a_keyed_post_whose_answer_is_lost_is_found_and_not_posted_again(fake: FakeSlack, slack: SlackGateway) -> None:
    channel = fake.add_channel("lost-post", members=[BOT])
    fake.drop_answers("chat.postMessage")
    ts = slack.post(channel, text="the charter", key="charter:1")
    assert texts(fake, channel) == ["the charter"]
    assert fake.messages(channel)[0]["ts"] == ts == fake.dropped[-1][1]["ts"]


def test_a_keyed_thread_reply_whose_answer_is_lost_is_found_in_the_thread(
    fake: FakeSlack, slack: SlackGateway
) -> None:
    channel = fake.add_channel("lost-reply", members=[BOT])
    parent = slack.post(channel, text="prompt")
    fake.drop_answers("chat.postMessage")
    ts = slack.post(channel, text="my answer", thread_ts=parent, key="answer:1")
    assert [(r["ts"], r["text"]) for r in fake.replies(channel, parent)] == [(ts, "my answer")]


def test_a_server_error_slack_did_not_act_on_is_posted_once_on_the_next_try(
    fake: FakeSlack, slack: SlackGateway
) -> None:
    channel = fake.add_channel("flaky", members=[BOT])
    fake.fail("chat.postMessage", "internal_error", status=500)
    ts = slack.post(channel, text="closing summary", key="closed:1")
    assert [m["ts"] for m in fake.messages(channel)] == [ts]


def test_a_keyed_post_gives_up_after_a_few_failed_tries_and_says_why(fake: FakeSlack, slack: SlackGateway) -> None:
    channel = fake.add_channel("down", members=[BOT])
    fake.fail("chat.postMessage", "service_unavailable", status=503, times=ONCE_TRIES)
    before = fake.call_count("chat.postMessage")
    with pytest.raises(SlackError) as err:
        slack.post(channel, text="hello", key="announce:1")
    assert (err.value.code, err.value.status) == ("service_unavailable", 503)
    assert fake.call_count("chat.postMessage") - before == ONCE_TRIES
    assert texts(fake, channel) == []


def test_a_refused_keyed_post_fails_at_once(fake: FakeSlack, slack: SlackGateway) -> None:
    archived = fake.add_channel("old-news", members=[BOT], is_archived=True)
    before = fake.call_count("conversations.history")
    with pytest.raises(SlackError) as err:
        slack.post(archived, text="hello", key="announce:2")
    assert err.value.code == "is_archived"
    assert fake.call_count("conversations.history") == before  # nothing to look for: Slack did nothing


# -- channels created once ---------------------------------------------------------------------------------
def test_a_channel_whose_creation_answer_is_lost_is_adopted_not_created_again(
    fake: FakeSlack, slack: SlackGateway
) -> None:
    fake.drop_answers("conversations.create")
    channel = slack.create_channel("partner-lost", is_private=True, in_use=never_used)
    assert [c.id for c in fake.channels.values() if c.name.startswith("partner-lost")] == [channel["id"]]
    assert channel["name"] == "partner-lost" and channel["is_private"]


def test_after_a_lost_answer_a_channel_in_use_or_made_by_someone_else_counts_as_taken(
    fake: FakeSlack, slack: SlackGateway
) -> None:
    ours = slack.create_channel("partner-used", is_private=False, in_use=never_used)["id"]
    fake.fail("conversations.create", "internal_error", status=500)
    with pytest.raises(SlackError) as err:
        slack.create_channel("partner-used", is_private=False, in_use=lambda channel_id: channel_id == ours)
    assert err.value.code == "name_taken"
    fake.add_channel("partner-theirs", members=[BOT])  # created by a person, not by the bot
    fake.fail("conversations.create", "internal_error", status=500)
    with pytest.raises(SlackError) as err:
        slack.create_channel("partner-theirs", is_private=False, in_use=never_used)
    assert err.value.code == "name_taken"


def test_a_name_taken_by_another_channel_is_reported_after_one_look(fake: FakeSlack, slack: SlackGateway) -> None:
    ours = slack.create_channel("partner-plain", is_private=False, in_use=never_used)["id"]
    before = fake.call_count("conversations.list")
    with pytest.raises(SlackError) as err:
        slack.create_channel("partner-plain", is_private=False, in_use=lambda channel_id: channel_id == ours)
    assert err.value.code == "name_taken"
    assert fake.call_count("conversations.list") == before + 1


def test_a_channel_orphaned_by_an_earlier_attempt_is_adopted_by_the_next(fake: FakeSlack, slack: SlackGateway) -> None:
    """The answer was lost and the look-up failed too: the caller gave up. Its next attempt finds the
    channel Slack did create, and takes it."""
    fake.drop_answers("conversations.create")
    fake.fail("conversations.list", "internal_error", status=500, times=10)
    with pytest.raises(SlackError):
        slack.create_channel("partner-orphan", is_private=False, in_use=never_used)
    fake.clear_faults()
    [orphan] = [c.id for c in fake.channels.values() if c.name.startswith("partner-orphan")]
    assert slack.create_channel("partner-orphan", is_private=False, in_use=never_used)["id"] == orphan
    assert [c.id for c in fake.channels.values() if c.name.startswith("partner-orphan")] == [orphan]


def test_a_created_channel_the_list_shows_late_is_adopted_after_waiting(
    fake: FakeSlack, slack: SlackGateway, slept: list[float]
) -> None:
    fake.drop_answers("conversations.create")
    fake.list_late("partner-late", times=2)
    channel = slack.create_channel("partner-late", is_private=False, in_use=never_used)
    assert [c.id for c in fake.channels.values() if c.name.startswith("partner-late")] == [channel["id"]]
    assert slept == list(CREATE_LOOKUP_DELAYS[:2])


def test_a_created_channel_the_list_never_shows_is_not_called_taken(
    fake: FakeSlack, slack: SlackGateway, slept: list[float]
) -> None:
    """Were it `name_taken`, the caller would create partner-unseen-2 and orphan partner-unseen."""
    fake.drop_answers("conversations.create")
    fake.list_late("partner-unseen", times=100)
    with pytest.raises(SlackError) as err:
        slack.create_channel("partner-unseen", is_private=False, in_use=never_used)
    assert err.value.code == CREATION_UNCONFIRMED
    assert len([c for c in fake.channels.values() if c.name.startswith("partner-unseen")]) == 1
    assert sum(slept) == pytest.approx(2 * sum(CREATE_LOOKUP_DELAYS))  # looked patiently after each try
    fake.list_late("partner-unseen", times=0)


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
        assert (err.value.code, err.value.status, err.value.maybe_done) == ("internal_error", 500, True)
        with pytest.raises(SlackError) as err:
            slack.post("CNOPE", text="x")
        assert (err.value.code, err.value.status) == ("channel_not_found", 200)
        assert slack.post(channel, text="fine") and texts(fake, channel) == ["fine"]
        assert fake.connections - before == 1
    finally:
        client.close()


def test_a_call_a_person_waits_on_is_sent_once_and_given_up_after_its_cap(fake: FakeSlack) -> None:
    import time

    client = make_client("xoxb-test", fake.base_url)  # retries, waits up to 15 s
    slack = SlackGateway(client)
    fake.add_user("UWAIT", "waiter")
    try:
        fake.fail("users.info", "ratelimited", status=429, headers={"Retry-After": "1"})
        before = fake.call_count("users.info")
        with pytest.raises(SlackError) as err:  # not sent again after Retry-After: the person is told at once
            slack.user_info("UWAIT", waiting=True)
        assert err.value.code == "ratelimited" and fake.call_count("users.info") - before == 1
        assert slack.user_info("UWAIT").name == "waiter"  # leaves a connection with the 15 s cap in the pool
        slack = SlackGateway(client)
        slack.waiting_client = while_waiting(client, timeout=0.2)  # the pool's connection, with this cap
        fake.slow("users.info", 0.5)
        started = time.monotonic()
        with pytest.raises(SlackError) as err:
            slack.user_info("UWAIT", waiting=True)
        assert err.value.code == "connection_error" and time.monotonic() - started < 0.45  # the cap, not 15 s
    finally:
        fake.slow("users.info", 0)
        client.close()


# -- files, privately ----------------------------------------------------------------------------------------
def test_a_file_reaches_the_person_in_their_direct_message_and_nowhere_else(
    fake: FakeSlack, slack: SlackGateway
) -> None:
    fake.add_user("UFILE", "filer")
    content = "answer\r\n合作伙伴\r\n".encode("utf-8-sig")
    file_id = slack.send_file("UFILE", filename="poll-3.csv", content=content, title="Poll #3", comment="Your export")
    upload = fake.files[file_id]
    assert upload["content"] == content and upload["title"] == "Poll #3"
    dm = fake.dm_channel("UFILE")
    assert dm is not None and upload["channels"] == [dm.id]
    [message] = fake.dm_messages("UFILE")
    assert message["text"] == "Your export" and message["files"][0]["name"] == "poll-3.csv"


def test_a_refused_file_upload_is_a_slack_error(fake: FakeSlack, slack: SlackGateway) -> None:
    fake.add_user("UFILE2", "filer2")
    fake.fail("files.getUploadURLExternal", "file_uploads_disabled")
    with pytest.raises(SlackError) as err:
        slack.send_file("UFILE2", filename="x.csv", content=b"a", title="x", comment="x")
    assert err.value.code == "file_uploads_disabled"
    assert fake.dm_messages("UFILE2") == []


def test_the_client_does_not_build_debug_lines_it_never_logs() -> None:
    """slack_sdk formats every request and answer for DEBUG when its logger's own level is unset."""
    client = make_client("xoxb-test", "http://127.0.0.1:9")
    assert client.logger.level >= logging.INFO


def test_a_colleague_from_another_workspace_of_our_grid_organization_is_not_of_another_org(fake: FakeSlack) -> None:
    slack = SlackGateway(make_client("xoxb-test", fake.base_url))
    fake.enterprise_id = "E0OURS"
    try:
        fake.add_user("U0SALES", "sam", team_id="T0SALES", enterprise_id="E0OURS")
        fake.add_user("U0THEM", "tim", team_id="T0THEM", enterprise_id="E0THEM")
        assert slack.auth_test()["enterprise_id"] == "E0OURS"
        sam, tim = slack.user_info("U0SALES"), slack.user_info("U0THEM")
    finally:
        fake.enterprise_id = None
    assert (sam.enterprise_id, sam.is_external) == ("E0OURS", False)
    assert not sam.from_another_org(fake.team_id, "E0OURS")
    assert tim.from_another_org(fake.team_id, "E0OURS")


def test_a_slack_connect_invitation_is_not_sent_again_after_a_5xx(fake: FakeSlack, slack: SlackGateway) -> None:
    channel = fake.add_channel("partner-invites", members=[BOT])
    fake.fail("conversations.inviteShared", "internal_error", status=500)
    before = fake.call_count("conversations.inviteShared")
    with pytest.raises(SlackError):
        slack.invite_shared(channel, "li@partner.com")
    assert fake.call_count("conversations.inviteShared") == before + 1  # it may have gone out: not twice
