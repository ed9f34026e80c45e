"""The whole app wired as in production (bot.build), without the HTTP server, against the fake Slack
and a frozen clock: for service-level tests that drive the scheduler by hand."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import select

from bot import Partnerbot, build
from models import Occurrence, Partnership
from services.container import Services
from services.inputs import NewPartnership, validate
from tests.conftest import make_settings, migrated_sqlite_url
from tests.fakes import FakeSlack
from tests.support.clock import FrozenClock

TEAM = "T0OURS"
ALICE, BOB, CAROL, DAN, PAT = "UALICE", "UBOB", "UCAROL", "UDAN", "UPAT"
PEOPLE = {ALICE: "alice", BOB: "bob", CAROL: "carol", DAN: "dan"}


def run_scheduler(bot: Partnerbot) -> int:
    """What the ticker does, by hand: plan, then run everything due now (and what that makes due)."""
    bot.ticker.plan()
    total = 0
    while started := bot.ticker.dispatcher.run_once():
        total += started
    return total


@dataclass
class Stack:
    fake: FakeSlack
    clock: FrozenClock
    bot: Partnerbot

    @property
    def services(self) -> Services:
        return self.bot.services

    def tick(self) -> int:
        return run_scheduler(self.bot)

    def restart(self) -> None:
        """The bot process stops (what it did not record is lost) and a new one starts on the same database."""
        settings = self.bot.settings
        self.bot.close()
        self.bot = build(settings, clock=self.clock)

    def at(self, moment: datetime) -> int:
        self.clock.set(moment)
        return self.tick()

    def partnership(
        self, name: str = "Acme", *, owners: Sequence[str] = (ALICE,), members: Sequence[str] = (),
        timezone: str = "Europe/Berlin",
    ) -> Partnership:
        req = validate(NewPartnership, name=name, timezone=timezone, owners=list(owners), members=list(members))
        outcome = self.services.partnerships.create(req, actor=owners[0], team_id=TEAM, creation_key=None)
        assert outcome.partnership is not None and outcome.partnership.channel_id
        return outcome.partnership

    def occurrences(self, **where: Any) -> list[Occurrence]:
        with self.services.uow() as s:
            query = select(Occurrence)
            for key, value in where.items():
                query = query.where(getattr(Occurrence, key) == value)
            return list(s.exec(query.order_by(Occurrence.id)).all())  # type: ignore[arg-type]


def new_fake(clock: FrozenClock) -> FakeSlack:
    fake = FakeSlack(bot_token="xoxb-test", team_id=TEAM, bot_user_id="UBOT", clock=clock.epoch).start()
    for user, name in PEOPLE.items():
        fake.add_user(user, name, email=f"{name}@ours.com", team_id=TEAM)
    fake.add_user(PAT, "pat", email="pat@partner.com", team_id="T0PARTNER")
    return fake


@contextmanager
def stack(tmp_path: Path, start: datetime | None = None, **settings: Any) -> Iterator[Stack]:
    clock = FrozenClock(start or datetime(2026, 3, 2, 7, 0, tzinfo=UTC))
    fake = new_fake(clock)
    values: dict[str, Any] = dict(slack_api_url=fake.base_url, database_url=migrated_sqlite_url(tmp_path / 'pb.db'),
                                  default_timezone="Europe/Berlin")
    values.update(settings)
    bot = build(make_settings(**values), clock=clock)
    try:
        yield Stack(fake, clock, bot)
    finally:
        bot.close()
        fake.stop()
