"""End-to-end harness: the real app served over HTTP (waitress), the real WebClient pointed at the
stateful fake Slack over loopback, and requests signed like Slack's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.clock import Clock
from adapters.web import WebServer
from bot import Partnerbot, build
from tests.conftest import make_settings, migrated_sqlite_url
from tests.fakes import FakeSlack, SlackSender
from tests.support.executor import TrackingExecutor
from tests.support.stack import run_scheduler

TEAM = "T0OURS"
PARTNER_TEAM = "T0PARTNER"
SECRET = "e2e-signing-secret"
ALICE, BOB, CAROL, DAN, PARTNER_PAT = "UALICE", "UBOB", "UCAROL", "UDAN", "UPAT"


def flatten(payload: Any) -> str:
    """Everything a person reads in a message: its text plus every text in its blocks."""
    if payload is None:
        return ""
    if isinstance(payload, str):
        return payload
    if isinstance(payload, list):
        return "\n".join(flatten(p) for p in payload)
    if isinstance(payload, dict):
        parts = [payload["text"]] if isinstance(payload.get("text"), str) else []
        parts += [flatten(payload.get(k)) for k in ("text", "blocks", "elements", "fields") if
                  isinstance(payload.get(k), (list, dict))]
        return "\n".join(p for p in parts if p)
    return ""


@dataclass
class Said:
    """What the person who acted was told privately, in order."""

    status: int
    messages: list[Any]

    @property
    def text(self) -> str:
        return "\n".join(flatten(m) for m in self.messages)


@dataclass
class Harness:
    fake: FakeSlack
    sender: SlackSender
    bot: Partnerbot
    executor: TrackingExecutor
    server: WebServer
    general: str

    def command(self, text: str, *, user: str = ALICE, channel: str | None = None) -> Said:
        status, body = self.sender.command("/partner", text, user_id=user, channel_id=channel or self.general)
        self.executor.wait_idle()
        url = self.sender.last_response_url
        return Said(status, [m for m in [body] if m] + self.fake.responses(url))

    def wait(self) -> None:
        self.executor.wait_idle()

    def deliver_events(self) -> list[bytes]:
        """Send the app, one by one, the events the fake Slack queued (people joining or leaving channels),
        and wait until they are handled; returns the bodies sent (to deliver one again)."""
        bodies = []
        for event in self.fake.take_events():
            status, _ = self.sender.event(event)
            assert status == 200, f"{event['type']} answered {status}"
            assert self.sender.last_event_body is not None
            bodies.append(self.sender.last_event_body)
            self.executor.wait_idle()
        return bodies

    def channel(self, name: str) -> Any:
        ch = self.fake.channel_by_name(name)
        assert ch is not None, f"no channel #{name}; channels: {[c.name for c in self.fake.channels.values()]}"
        return ch

    def dm_text(self, user: str) -> str:
        return "\n".join(flatten(m) for m in self.fake.dm_messages(user))

    def tick(self) -> int:
        return run_scheduler(self.bot)

    def close(self) -> None:
        self.server.close()
        self.executor.shutdown(wait=True)
        self.bot.close()


def new_fake(**kwargs: Any) -> FakeSlack:
    """A started fake Slack with our people, a partner contact and another bot."""
    fake = FakeSlack(bot_token="xoxb-test", team_id=TEAM, bot_user_id="UBOT", **kwargs).start()
    fake.add_user(ALICE, "alice", email="alice@ours.com", team_id=TEAM)
    fake.add_user(BOB, "bob", email="bob@ours.com", team_id=TEAM)
    fake.add_user(CAROL, "carol", email="carol@ours.com", team_id=TEAM)
    fake.add_user(DAN, "dan", email="dan@ours.com", team_id=TEAM)
    fake.add_user(PARTNER_PAT, "pat", email="pat@partner.com", team_id=PARTNER_TEAM)
    fake.add_user("UOTHERBOT", "otherbot", team_id=TEAM, is_bot=True)
    return fake


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    fake = new_fake()
    yield fake
    fake.stop()


def start_harness(fake: FakeSlack, tmp_path: Any, *, clock: Clock | None = None, **settings: Any) -> Harness:
    values: dict[str, Any] = dict(
        slack_signing_secret=SECRET, slack_api_url=fake.base_url,
        database_url=migrated_sqlite_url(tmp_path / 'partnerbot.db'), default_timezone="Europe/Berlin",
    )
    values.update(settings)
    executor = TrackingExecutor()
    bot = build(make_settings(**values), listener_executor=executor, after_ack_executor=executor, clock=clock)
    server = WebServer(bot.wsgi(), host="127.0.0.1", port=0, threads=4).start()
    general = fake.add_channel("general", members=[ALICE, BOB, CAROL, DAN])
    sender = SlackSender(app_url=f"{server.url}/slack/events", signing_secret=SECRET, fake=fake, team_id=TEAM)
    return Harness(fake, sender, bot, executor, server, general)


@pytest.fixture
def h(fake: FakeSlack, tmp_path: Any) -> Iterator[Harness]:
    harness = start_harness(fake, tmp_path)
    yield harness
    harness.close()
