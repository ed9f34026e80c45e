"""The partnership issue log: issues with a number per partnership, owners on both sides, two SLA clocks, their
history; and each partnership's SLA targets.

The SLA clocks are kept as columns (target, counted time of earlier runs, running since, stopped at), so the
planner can read every running clock of every partnership in one query; services/sla.py does the arithmetic.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.base import enum_column, utcnow

ISSUE_TITLE_MAX = 150
ISSUE_DESCRIPTION_MAX = 3000
RESOLUTION_MAX = 3000
ESCALATION_NOTE_MAX = 500
LINK_MAX = 500


class IssueStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    WAITING = "waiting"  # waiting on the partner: the resolve clock is paused
    RESOLVED = "resolved"


class IssueSource(StrEnum):
    COMMAND = "command"
    FORM = "form"
    SHORTCUT = "shortcut"  # the message shortcut: `source_link` is the message's permalink
    CHECKIN = "checkin"  # a check-in answer (a blocker or a need): `source_link` is the answer's reply, if any


class Issue(SQLModel, table=True):
    __table_args__ = (
        sa.UniqueConstraint("partnership_id", "number"),
        sa.Index("ix_issue_partnership_id_status", "partnership_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    partnership_id: int = Field(foreign_key="partnership.id", ondelete="CASCADE")
    number: int  # 1, 2, 3 … within its partnership: `#7` in every command and message
    # The request it came from (a form's view id, a command's trigger id): a repeated request logs it once.
    creation_key: str | None = Field(default=None, max_length=128, unique=True)
    title: str = Field(max_length=ISSUE_TITLE_MAX)
    description: str = Field(default="", max_length=ISSUE_DESCRIPTION_MAX)
    severity: str = Field(max_length=16)  # services.sla.Severity
    status: IssueStatus = Field(default=IssueStatus.OPEN, sa_type=enum_column(IssueStatus))
    reporter: str = Field(max_length=32)
    owner_ours: str | None = Field(default=None, max_length=32)
    owner_partner: str | None = Field(default=None, max_length=32)
    due_date: date | None = None  # a local date in the partnership's time zone
    source: IssueSource = Field(default=IssueSource.COMMAND, sa_type=enum_column(IssueSource))
    source_link: str | None = Field(default=None, max_length=LINK_MAX)
    # The card: posted in the channel by the `issue_card` occurrence and updated in place after every change.
    channel_id: str = Field(max_length=32)
    message_ts: str | None = Field(default=None, max_length=32)
    card_refreshed_at: datetime | None = None
    # Bumped on every change that re-plans its timers (planned occurrences carry it as their revision).
    version: int = 1
    # The version whose timers are planned (set in the transaction of the change that planned them): the periodic
    # planner only looks at issues where it is behind, so a pass with nothing changed costs one query.
    planned_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = Field(default_factory=utcnow)
    changed_at: datetime = Field(default_factory=utcnow)
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = Field(default=None, max_length=32)
    resolved_at: datetime | None = None
    resolved_by: str | None = Field(default=None, max_length=32)
    resolution: str = Field(default="", max_length=RESOLUTION_MAX)
    escalated_at: datetime | None = None  # the last manual escalation
    escalations: int = 0  # how many manual escalations (each one is keyed by its count)
    # The acknowledge clock (runs from logging until acknowledged or resolved).
    ack_target_s: int
    ack_consumed_s: int = 0
    ack_running_since: datetime | None = None
    ack_stopped_at: datetime | None = None
    # The resolve clock (paused while waiting on the partner; a reopen starts run 2, 3, …).
    res_target_s: int
    res_consumed_s: int = 0
    res_running_since: datetime | None = None
    res_stopped_at: datetime | None = None
    res_run: int = 1
    # How far each clock's current run is up its escalation ladder: the levels reached so far (0: none, 1: the 80 %
    # reminder, 2: the breach, 3: the escalation). Only the next level is planned; each level, when it runs (or
    # is skipped, or fails for good), records itself here and plans the one after it. A reopen starts at 0.
    ack_reached: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    res_reached: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # For the figures: stopped within target? (None while the clock runs; a reopen clears `resolved_in_time`.)
    acknowledged_in_time: bool | None = None
    resolved_in_time: bool | None = None


class IssueEvent(SQLModel, table=True):
    """One change of an issue, with who and when: the issue's history."""

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issue.id", index=True, ondelete="CASCADE")
    at: datetime = Field(default_factory=utcnow)
    actor: str = Field(max_length=32)  # a user id, or the bot's for the SLA ladder
    action: str = Field(max_length=32)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)


class IssueSlaSettings(SQLModel, table=True):
    """A partnership's SLA targets (seconds per severity: {"high": [ack, resolve]}; missing ones: the defaults)
    and whether its clocks count business hours only."""

    partnership_id: int = Field(foreign_key="partnership.id", primary_key=True, ondelete="CASCADE")
    targets: dict[str, list[int]] = Field(default_factory=dict, sa_type=sa.JSON)
    business_hours: bool = False
    days: str = Field(default="mon-fri", max_length=40)
    start: str = Field(default="09:00", max_length=5)
    end: str = Field(default="17:00", max_length=5)
    updated_by: str = Field(default="", max_length=32)
    updated_at: datetime = Field(default_factory=utcnow)
