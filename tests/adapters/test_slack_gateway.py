"""The gateway against the fake Slack: invitations in batches within Slack's per-call limit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.slack import INVITE_BATCH, SlackGateway, make_client
from tests.fakes import FakeSlack


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


def test_invites_go_in_batches_and_one_bad_id_does_not_keep_the_others_out(fake: FakeSlack) -> None:
    people = [f"U{i:04d}" for i in range(2 * INVITE_BATCH + 30)]
    for user in people:
        fake.add_user(user, user.lower())
    gateway = SlackGateway(make_client("xoxb-test", fake.base_url))
    channel = gateway.create_channel("partner-big", is_private=False)["id"]
    refused = gateway.invite(channel, [*people, "UGHOST", people[0]])
    assert refused == [("UGHOST", "user_not_found")]
    assert set(people) <= fake.channels[channel].members
    assert all(len(args["users"].split(",")) <= INVITE_BATCH for m, args in fake.calls if m == "conversations.invite")
