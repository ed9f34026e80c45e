"""Durable scheduled work: one `occurrence` row per business slot, with a unique key.

The planner inserts rows idempotently; the dispatcher claims due rows under a lease, runs them outside
the transaction and completes them only while it still holds the claim (fencing on claimed_by and
attempts).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.base import enum_column, utcnow

KEY_MAX = 200


class OccurrenceState(StrEnum):
    PENDING = "pending"  # waiting for run_at
    CLAIMED = "claimed"  # a worker holds it until lease_until
    DONE = "done"
    SKIPPED = "skipped"  # by policy (missed its window, superseded) or by a person (/partner checkin skip)
    OBSOLETE = "obsolete"  # the business row no longer wants it (schedule changed, paused, closed)
    FAILED = "failed"  # gave up after retries; owners were told


class Occurrence(SQLModel, table=True):
    __table_args__ = (sa.Index("ix_occurrence_state_run_at", "state", "run_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=KEY_MAX, unique=True)
    kind: str = Field(max_length=32)
    # The business row it is about; which table that is depends on the kind (services.scheduling.KINDS).
    subject_id: int = Field(index=True)
    due_at: datetime  # the business time (for misfire rules)
    run_at: datetime  # when it may run next (due_at, or later after a backoff)
    not_after: datetime | None = None  # past this, the misfire policy applies
    state: OccurrenceState = Field(default=OccurrenceState.PENDING, sa_type=enum_column(OccurrenceState))
    claimed_by: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = None
    attempts: int = 0
    # Failed attempts so far (a rate limit does not count); past the kind's max_failures it is given up.
    failures: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    last_error: str | None = Field(default=None, max_length=500)
    # Set when an attempt may have reached Slack without being recorded: it failed in a way that may have
    # posted (a dropped connection, a 5xx, a bug), or its holder's lease expired and another process took it
    # over (recorded in the claim's own transaction). Every later attempt looks in the channel before
    # posting. Nothing that returns the row to pending (release, retry, re-planning) ever resets it.
    maybe_posted_at: datetime | None = None
    # The version of the business row it was planned from: re-planning never overwrites a newer plan. A run
    # requested again while it is running (`request_run`) also moves it on, so it runs once more after.
    revision: int = 0
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)  # business data only
    result_channel: str | None = Field(default=None, max_length=32)
    result_ts: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class SchedulerBeat(SQLModel, table=True):
    """The last tick of each scheduler process, for /healthz."""

    worker_id: str = Field(primary_key=True, max_length=64)
    last_tick_at: datetime
