"""Pulse surveys: a partnership's recurring health survey, its rounds, and the (anonymous) responses.

A response never holds a Slack user id when its round is anonymous: "answering again replaces" finds the
earlier response by `responder`, a keyed hash (HMAC) of the round and the person whose key is not in the
database (services/pulse.py). It holds the responder's side, for the per-side figures, no timestamps and no
counter id.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.base import enum_column, utcnow

if TYPE_CHECKING:
    from services.stats import RatingSummary

PULSE_QUESTION_MAX = 150
PULSE_QUESTIONS_MAX = 8
OPEN_ANSWER_MAX = 1000
DEFAULT_OPEN_DAYS = 5
OPEN_DAYS_MAX = 14
RATING_MIN, RATING_MAX = 1, 5
OPEN_PREFIX = "Open:"  # a question line starting with this is answered in words; the others are rated 1-5

# What makes partnerships work: trust, communication, shared goals, value, problem resolution, and one change.
DEFAULT_PULSE_QUESTIONS: list[dict[str, str]] = [
    {"text": "How much do the two organizations trust each other?", "kind": "rating"},
    {"text": "How well do we communicate?", "kind": "rating"},
    {"text": "How aligned are we on our shared goals?", "kind": "rating"},
    {"text": "How much value does the partnership deliver?", "kind": "rating"},
    {"text": "How quickly are problems resolved?", "kind": "rating"},
    {"text": "What one thing should change?", "kind": "open"},
]


class QuestionKind(StrEnum):
    RATING = "rating"
    OPEN = "open"


class CadenceKind(StrEnum):
    WEEKS = "weeks"  # every N weeks on a weekday
    MONTHLY = "monthly"  # the first..fourth or last weekday of the month


class Audience(StrEnum):
    BOTH = "both"
    OURS = "ours"
    PARTNER = "partner"


class PulseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class PulseSchedule(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    partnership_id: int = Field(foreign_key="partnership.id", unique=True, ondelete="CASCADE")
    cadence: CadenceKind = Field(sa_type=enum_column(CadenceKind))
    every_weeks: int = 4
    nth: int = 1  # monthly: 1-4, or -1 for the last
    weekday: str = Field(max_length=3)
    anchor_date: date  # every N weeks counts from the first `weekday` on or after it
    local_time: str = Field(max_length=5)
    timezone: str = Field(max_length=64)
    open_days: int = DEFAULT_OPEN_DAYS
    anonymous: bool = True
    audience: Audience = Field(default=Audience.BOTH, sa_type=enum_column(Audience))
    questions: list[dict[str, str]] = Field(default_factory=lambda: [dict(q) for q in DEFAULT_PULSE_QUESTIONS],
                                            sa_type=sa.JSON)
    paused: bool = False
    version: int = 1  # bumped on every change; planned rounds carry it
    effective_from: datetime = Field(default_factory=utcnow)  # nothing due before this is planned
    updated_by: str = Field(max_length=32)
    updated_at: datetime = Field(default_factory=utcnow)


class PulseRound(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)  # the opening occurrence's key
    partnership_id: int = Field(foreign_key="partnership.id", index=True, ondelete="CASCADE")
    local_date: date
    timezone: str = Field(max_length=64)
    scheduled_for: datetime
    opened_at: datetime
    closes_at: datetime
    manual: bool = False
    started_by: str | None = Field(default=None, max_length=32)
    questions: list[dict[str, str]] = Field(default_factory=list, sa_type=sa.JSON)
    anonymous: bool = True
    audience: Audience = Field(default=Audience.BOTH, sa_type=enum_column(Audience))
    # Who was asked, per side ({"ours": [...], "partner": [...]}): fixed when the round opens.
    asked: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    channel_id: str = Field(max_length=32)
    message_ts: str | None = Field(default=None, max_length=32)
    status: PulseStatus = Field(default=PulseStatus.OPEN, sa_type=enum_column(PulseStatus))
    closed_at: datetime | None = None


class PulseResponse(SQLModel, table=True):
    """One person's answers to one round. Anonymous rounds: `user_id` is NULL, `responder` is an HMAC. The id is
    random, not a counter: the order of the rows says nothing about who answered first (no column does)."""

    __table_args__ = (sa.UniqueConstraint("round_id", "responder"),)

    id: str = Field(default_factory=lambda: secrets.token_hex(16), primary_key=True, max_length=32)
    round_id: int = Field(foreign_key="pulseround.id", index=True, ondelete="CASCADE")
    responder: str = Field(max_length=64)  # hex HMAC-SHA256 of (round, person) under a key kept out of the database
    side: str = Field(max_length=16)
    user_id: str | None = Field(default=None, max_length=32)  # only in rounds that are not anonymous
    ratings: list[int | None] = Field(default_factory=list, sa_type=sa.JSON)  # per question; None: open or skipped
    answers: list[str] = Field(default_factory=list, sa_type=sa.JSON)  # per question; "" for rating questions


@dataclass(frozen=True)
class QuestionResult:
    text: str
    summary: RatingSummary[str]


@dataclass(frozen=True)
class PulseResults:
    """A round's results as shown: per rating question, participation per side, the open answers."""

    questions: list[QuestionResult]
    participation: dict[str, tuple[int, int]]  # side -> (answered, asked)
    open_answers: list[tuple[str, list[str]]]  # open question -> its answers, in no particular person's order
    answered_by: list[str]  # rounds that are not anonymous only
    min_per_side: int

    @property
    def respondents(self) -> int:
        return sum(a for a, _ in self.participation.values())
