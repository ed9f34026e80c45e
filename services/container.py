"""The services container that bot.py builds once and hands to handlers and jobs."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass

from sqlalchemy import Engine

from adapters.clock import Clock
from adapters.slack import SlackGateway
from config.settings import Settings
from models.db import UnitOfWork
from services.checkins import CheckinService
from services.issues import IssueService
from services.milestones import MilestoneService
from services.partnerships import PartnershipService
from services.polls import PollService
from services.pulse import PulseService


@dataclass
class Services:
    settings: Settings
    engine: Engine
    uow: UnitOfWork
    slack: SlackGateway
    clock: Clock
    partnerships: PartnershipService
    checkins: CheckinService
    pulse: PulseService
    milestones: MilestoneService
    polls: PollService
    issues: IssueService
    bot_user_id: str
    # Where listeners do what follows their ack (handlers.common.after_ack): not Bolt's listener pool, which
    # also runs every ack.
    after_ack: Executor
