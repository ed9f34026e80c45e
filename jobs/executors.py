"""The executor registry: which service call runs each kind of occurrence, under which policy, and the
planners the ticker runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlmodel import Session

from models.scheduling import Occurrence
from services.container import Services
from services.scheduling import (
    CHECKIN_CLOSE,
    CHECKIN_PROMPT,
    CHECKIN_REMIND,
    CHECKIN_REPLY,
    KINDS,
    NOTICE,
    POLL_CLOSE,
    POLL_POST,
    POLL_REFRESH,
    POLL_REMIND,
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
    polls = services.polls

    def executor(kind: str, run: Callable[[Occurrence, RunContext], Completion],
                 on_failure: Callable[[Session, Occurrence, str], None] | None = None) -> Executor:
        return Executor(run, KINDS[kind].policy, on_failure)

    return {
        CHECKIN_PROMPT: executor(CHECKIN_PROMPT, checkins.run_prompt, checkins.on_failure),
        # A reminder is a direct message to one person: a failure is listed in the round's summary.
        CHECKIN_REMIND: executor(CHECKIN_REMIND, checkins.run_reminder, checkins.on_reminder_failure),
        CHECKIN_CLOSE: executor(CHECKIN_CLOSE, checkins.run_close, checkins.on_failure),
        CHECKIN_REPLY: executor(CHECKIN_REPLY, checkins.run_reply, checkins.on_failure),
        # A notice that cannot be delivered is only logged: telling people about it would need another notice.
        NOTICE: executor(NOTICE, run_notice),
        POLL_POST: executor(POLL_POST, polls.run_post, polls.on_failure),
        POLL_CLOSE: executor(POLL_CLOSE, polls.run_close, polls.on_failure),
        # A failed update is only logged: the next vote, or the close, shows the tally again.
        POLL_REFRESH: executor(POLL_REFRESH, polls.run_refresh),
        POLL_REMIND: executor(POLL_REMIND, polls.run_reminder),
    }


def build_planners(services: Services) -> dict[str, Planner]:
    return {"checkins": services.checkins.plan}
