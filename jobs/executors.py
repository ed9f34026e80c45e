"""The executor registry: which service call runs each kind of occurrence, under which policy, and the
planners the ticker runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from models.scheduling import Occurrence
from services.container import Services
from services.scheduling import (
    CHECKIN_CLOSE,
    CHECKIN_PROMPT,
    CHECKIN_REMIND,
    NOTICE,
    POLICIES,
    Completion,
    Executor,
    RunContext,
)

Planner = Callable[[datetime], int]


def run_notice(occ: Occurrence, ctx: RunContext) -> Completion:
    """A direct message planned by someone else's failure (e.g. to a partnership's owners)."""
    channel, ts = ctx.post(str(occ.payload["user"]), text=str(occ.payload["text"]))
    return Completion.done(channel, ts)


def build_executors(services: Services) -> dict[str, Executor]:
    checkins = services.checkins
    return {
        CHECKIN_PROMPT: Executor(checkins.run_prompt, POLICIES[CHECKIN_PROMPT], checkins.on_failure),
        # A reminder is a direct message to one person: its failure is logged, not sent to the owners.
        CHECKIN_REMIND: Executor(checkins.run_reminder, POLICIES[CHECKIN_REMIND]),
        CHECKIN_CLOSE: Executor(checkins.run_close, POLICIES[CHECKIN_CLOSE], checkins.on_failure),
        NOTICE: Executor(run_notice, POLICIES[NOTICE]),
    }


def build_planners(services: Services) -> dict[str, Planner]:
    return {"checkins": services.checkins.plan}
