"""Check-ins: a partnership's schedule, its rounds, the answers, and people marked away."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.base import enum_column, utcnow

# Weekdays as schedules store them ("mon,wed,fri"), Monday first like date.weekday().
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class QuestionKind(StrEnum):
    """What a check-in question asks for. The answers to blocker and need questions are listed in the
    summary, by kind, each with its author and a "Log as issue" button."""

    PLAIN = "plain"
    BLOCKER = "blocker"
    NEED = "need"  # something needed from the partner


# In the questions forms a line starting with one of these sets its question's kind; other lines are plain.
KIND_PREFIXES = {QuestionKind.BLOCKER: "Blocker:", QuestionKind.NEED: "Need:"}


@dataclass(frozen=True)
class Question:
    text: str
    kind: QuestionKind = QuestionKind.PLAIN

    @property
    def line(self) -> str:
        """The question as the forms show it: its kind's prefix, then its text."""
        prefix = KIND_PREFIXES.get(self.kind)
        return f"{prefix} {self.text}" if prefix else self.text

    @classmethod
    def from_line(cls, line: str) -> Question:
        """A line of the forms: `Blocker: ...` and `Need: ...` (any case) set the kind; others are plain."""
        line = line.strip()
        for kind, prefix in KIND_PREFIXES.items():
            if line.lower().startswith(prefix.lower()):
                return cls(line[len(prefix):].strip(), kind)
        return cls(line)


DEFAULT_QUESTIONS = [
    Question("What moved since the last check-in?"),
    Question("What is next?"),
    Question("Any blockers?", QuestionKind.BLOCKER),
    Question("What do we need from the partner?", QuestionKind.NEED),
]
QUESTION_MAX = 150
QUESTIONS_MAX = 6
ANSWER_MAX = 2000
DEFAULT_WINDOW_MINUTES = 240
WINDOW_MIN_MINUTES = 15
WINDOW_MAX_MINUTES = 24 * 60


class ParticipantMode(StrEnum):
    ALL = "all"  # every member of the partnership, both sides
    CHOSEN = "chosen"


class RoundStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class CheckinSchedule(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    partnership_id: int = Field(foreign_key="partnership.id", unique=True, ondelete="CASCADE")
    weekdays: str = Field(max_length=40)  # "mon,wed,fri"
    local_time: str = Field(max_length=5)  # "09:30"
    timezone: str = Field(max_length=64)
    questions: list[str] = Field(default_factory=lambda: [q.text for q in DEFAULT_QUESTIONS], sa_type=sa.JSON)
    # The kind of each question (QuestionKind values), by position; read through `questions_of`.
    question_kinds: list[str] = Field(default_factory=lambda: [q.kind.value for q in DEFAULT_QUESTIONS],
                                      sa_type=sa.JSON, sa_column_kwargs={"server_default": "[]"})
    window_minutes: int = DEFAULT_WINDOW_MINUTES
    participant_mode: ParticipantMode = Field(default=ParticipantMode.ALL, sa_type=enum_column(ParticipantMode))
    participants: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    # When participants who have not answered get their one reminder: this many minutes before the
    # window closes; None means halfway through the window, 0 means no reminder.
    remind_before_close_minutes: int | None = None
    paused: bool = False
    # Bumped on every change; planned occurrences carry it, so a stale plan can never win.
    version: int = 1
    # Slots due before this instant are never planned (set on every change, so a new or changed
    # schedule does not post a "missed" prompt for earlier today).
    effective_from: datetime = Field(default_factory=utcnow)
    updated_by: str = Field(max_length=32)
    updated_at: datetime = Field(default_factory=utcnow)


class CheckinRound(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)  # the prompt occurrence's key
    partnership_id: int = Field(foreign_key="partnership.id", index=True, ondelete="CASCADE")
    local_date: date
    timezone: str = Field(max_length=64)
    scheduled_for: datetime
    opened_at: datetime
    closes_at: datetime
    delayed: bool = False
    manual: bool = False  # run with `/partner checkin now`
    started_by: str | None = Field(default=None, max_length=32)
    questions: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    # The kinds the questions were asked with (the schedule's at the time), by position.
    question_kinds: list[str] = Field(default_factory=list, sa_type=sa.JSON, sa_column_kwargs={"server_default": "[]"})
    participants: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    away: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    channel_id: str = Field(max_length=32)
    prompt_ts: str | None = Field(default=None, max_length=32)
    status: RoundStatus = Field(default=RoundStatus.OPEN, sa_type=enum_column(RoundStatus))
    closed_at: datetime | None = None
    # Participants whose reminder Slack refused for good ({"user": id, "error": code}); the summary lists them.
    undelivered: list[dict[str, str]] = Field(default_factory=list, sa_type=sa.JSON,
                                              sa_column_kwargs={"server_default": "[]"})


class CheckinAnswer(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("round_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="checkinround.id", index=True, ondelete="CASCADE")
    user_id: str = Field(max_length=32)
    answers: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    revision: int = 1  # bumped on every edit
    # The reply in the prompt's thread that shows these answers (posted and kept up to date by the
    # `checkin_reply` occurrence of this answer).
    reply_ts: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Away(SQLModel, table=True):
    """A person marked away until a date (inclusive), across all partnerships."""

    user_id: str = Field(primary_key=True, max_length=32)
    until: date
    set_at: datetime = Field(default_factory=utcnow)


class HasQuestions(Protocol):
    """A schedule or a round: question texts and their kinds, stored side by side."""

    questions: list[str]
    question_kinds: list[str]


def questions_of(row: HasQuestions) -> list[Question]:
    """The questions with their kinds. A kind that is missing or unknown (a row written before kinds
    existed, or by a newer version) reads as plain."""
    kinds = list(row.question_kinds or [])
    known = {k.value for k in QuestionKind}
    return [Question(text, QuestionKind(kinds[i]) if i < len(kinds) and kinds[i] in known else QuestionKind.PLAIN)
            for i, text in enumerate(row.questions)]


def set_questions(row: HasQuestions, questions: Sequence[Question]) -> None:
    """Store questions with their kinds (new lists: JSON columns are reassigned, never changed in place)."""
    row.questions = [q.text for q in questions]
    row.question_kinds = [q.kind.value for q in questions]


# Answers that say "nothing to report": not listed among blockers and needs.
_NOTHING = {"", "-", "--", "none", "no", "nope", "n/a", "na", "nothing", "no blockers", "none.", "no.", "nothing."}


@dataclass(frozen=True)
class Flagged:
    """An answer to a blocker or need question that says something."""

    user_id: str
    question: str
    answer: str
    kind: QuestionKind
    answer_id: int | None  # the CheckinAnswer's id
    index: int  # the question's position in its round


@dataclass(frozen=True)
class Tally:
    """Who answered a round, who is missing, who was away, and the blockers and needs they wrote."""

    participants: list[str]
    answered: list[str]  # participants who answered
    extra: list[str]  # people who answered without being on the participant list
    away: list[str]  # participants away who did not answer
    missing: list[str]
    flagged: list[Flagged]  # blockers and needs, by author then question
    asked: frozenset[QuestionKind] = frozenset()  # the kinds of the round's questions

    def of_kind(self, kind: QuestionKind) -> list[Flagged]:
        return [f for f in self.flagged if f.kind == kind]

    @property
    def expected(self) -> int:
        return len(self.participants) - len(self.away)

    @property
    def rate(self) -> float | None:
        """Answered / expected (participants who were not away); None when nobody was expected."""
        return len(self.answered) / self.expected if self.expected else None


def tally(round_: CheckinRound, answers: list[CheckinAnswer], away_now: set[str]) -> Tally:
    """Count a round. Away means away when it opened, or marked away since and not answered."""
    by_user = {a.user_id: a for a in answers if any(x.strip() for x in a.answers)}
    participants = list(dict.fromkeys(round_.participants))
    away_set = set(round_.away) | away_now
    answered = [u for u in participants if u in by_user]
    away = [u for u in participants if u not in by_user and u in away_set]
    missing = [u for u in participants if u not in by_user and u not in away_set]
    extra = [u for u in by_user if u not in participants]
    questions = questions_of(round_)
    flagged = []
    for user in answered + extra:
        a = by_user[user]
        for i, (question, answer) in enumerate(zip(questions, a.answers, strict=False)):
            if question.kind != QuestionKind.PLAIN and answer.strip().lower() not in _NOTHING:
                flagged.append(Flagged(user, question.text, answer.strip(), question.kind, a.id, i))
    return Tally(participants, answered, extra, away, missing, flagged, frozenset(q.kind for q in questions))
