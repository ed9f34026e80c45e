"""The executor registry: which service call runs each kind of occurrence, under which policy, and the
planners the ticker runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session

from models.scheduling import Occurrence
from services.container import Services
from services.scheduling import (
    CHECKIN_CLOSE,
    CHECKIN_PROMPT,
    CHECKIN_REMIND,
    CHECKIN_REPLY,
    ISSUE_CARD,
    ISSUE_DUE,
    ISSUE_NOTE,
    ISSUE_SLA,
    KINDS,
    MILESTONE_OVERDUE,
    MILESTONE_REMIND,
    NOTICE,
    PARTNERSHIP_POST,
    POLL_CLOSE,
    POLL_POST,
    POLL_REFRESH,
    POLL_REMIND,
    PULSE_ANSWERS,
    PULSE_CLOSE,
    PULSE_OPEN,
    PULSE_REMIND,
    WINS_RECAP,
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
    pulse = services.pulse
    milestones = services.milestones
    polls = services.polls
    issues = services.issues

    def executor(kind: str, run: Callable[[Occurrence, RunContext], Completion],
                 on_failure: Callable[[Session, Occurrence, str], None] | None = None,
                 prefetch: Callable[[Sequence[Occurrence]], dict[Any, Any]] | None = None) -> Executor:
        return Executor(run, KINDS[kind].policy, on_failure, prefetch)

    return {
        # Prompts claimed together read their partnerships and schedules in one query.
        CHECKIN_PROMPT: executor(CHECKIN_PROMPT, checkins.run_prompt, checkins.on_failure, checkins.prefetch_prompts),
        # A reminder is a direct message to one person: a failure is listed in the round's summary.
        CHECKIN_REMIND: executor(CHECKIN_REMIND, checkins.run_reminder, checkins.on_reminder_failure),
        CHECKIN_CLOSE: executor(CHECKIN_CLOSE, checkins.run_close, checkins.on_failure),
        CHECKIN_REPLY: executor(CHECKIN_REPLY, checkins.run_reply, checkins.on_failure),
        PULSE_OPEN: executor(PULSE_OPEN, pulse.run_open, pulse.on_failure),
        # A reminder Slack refuses for good (a deactivated person) is only logged: the results count answers.
        PULSE_REMIND: executor(PULSE_REMIND, pulse.run_reminder),
        PULSE_CLOSE: executor(PULSE_CLOSE, pulse.run_close, pulse.on_failure),
        PULSE_ANSWERS: executor(PULSE_ANSWERS, pulse.run_answers, pulse.on_failure),
        # A notice that cannot be delivered is only logged: telling people about it would need another notice.
        NOTICE: executor(NOTICE, run_notice),
        MILESTONE_REMIND: executor(MILESTONE_REMIND, milestones.run_reminder, milestones.on_failure),
        MILESTONE_OVERDUE: executor(MILESTONE_OVERDUE, milestones.run_overdue, milestones.on_failure),
        PARTNERSHIP_POST: executor(PARTNERSHIP_POST, milestones.run_post, milestones.on_failure),
        WINS_RECAP: executor(WINS_RECAP, milestones.run_recap, milestones.on_failure),
        POLL_POST: executor(POLL_POST, polls.run_post, polls.on_failure),
        POLL_CLOSE: executor(POLL_CLOSE, polls.run_close, polls.on_failure),
        # A failed update is only logged: the next vote, or the close, shows the tally again.
        POLL_REFRESH: executor(POLL_REFRESH, polls.run_refresh),
        POLL_REMIND: executor(POLL_REMIND, polls.run_reminder),
        # A card or thread note that cannot be posted for good: a channel gone is recorded; the ladder's direct
        # messages are notices of their own, so an archived channel stops none of them.
        ISSUE_CARD: executor(ISSUE_CARD, issues.run_card, issues.on_failure),
        ISSUE_NOTE: executor(ISSUE_NOTE, issues.run_note, issues.on_failure),
        ISSUE_SLA: executor(ISSUE_SLA, issues.run_sla, issues.on_failure),
        ISSUE_DUE: executor(ISSUE_DUE, issues.run_due, issues.on_failure),
    }


def build_planners(services: Services) -> dict[str, Planner]:
    return {"checkins": services.checkins.plan, "pulse": services.pulse.plan, "milestones": services.milestones.plan,
            "issues": services.issues.plan}
