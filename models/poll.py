"""Feedback polls: a question posted in a partnership's channel, its votes, and the tally maths.

A vote row never holds a Slack user id when the poll is anonymous: it is keyed by `voter`, a keyed hash
(HMAC) of (poll, person) whose key lives only in the process's settings, never in the database. The
same hash de-duplicates every poll's votes; `user_id` is filled only for polls that are not anonymous.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.base import enum_column, utcnow
from models.partnership import Side

POLL_QUESTION_MAX = 300
POLL_OPTION_MAX = 75
POLL_OPTIONS_MIN = 2
POLL_OPTIONS_MAX = 10
POLL_ANSWER_MAX = 2000  # an open-text answer
POLL_AHEAD_MAX_DAYS = 90
ANONYMOUS_TALLY_MIN = 3  # an anonymous poll shows its live tally from this many respondents on
TEXT_OPTION = 0  # the `option` of an open-text answer (one per person)

RATING_VALUES = tuple(range(1, 6))
NPS_VALUES = tuple(range(0, 11))


class PollKind(StrEnum):
    SINGLE = "single"
    MULTIPLE = "multiple"
    RATING = "rating"  # 1 to 5
    NPS = "nps"  # 0 to 10
    TEXT = "text"

    @property
    def is_choice(self) -> bool:
        return self in (PollKind.SINGLE, PollKind.MULTIPLE)


class PollAudience(StrEnum):
    ALL = "all"  # everyone in the partnership, both sides
    OURS = "ours"
    PARTNER = "partner"
    CHOSEN = "chosen"


class ResultsMode(StrEnum):
    LIVE = "live"
    AFTER_CLOSE = "after_close"


class PollStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Poll(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("partnership_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    partnership_id: int = Field(foreign_key="partnership.id", index=True, ondelete="CASCADE")
    number: int  # #1, #2... per partnership
    # Idempotency key of the request that created it (a form's view id, a command's trigger id).
    creation_key: str = Field(max_length=128, unique=True)
    question: str = Field(max_length=POLL_QUESTION_MAX)
    kind: PollKind = Field(sa_type=enum_column(PollKind))
    options: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    max_picks: int | None = None  # multiple choice: the most options one person may pick (None: no limit)
    anonymous: bool = False
    results: ResultsMode = Field(default=ResultsMode.LIVE, sa_type=enum_column(ResultsMode))
    audience: PollAudience = Field(default=PollAudience.ALL, sa_type=enum_column(PollAudience))
    chosen: list[str] = Field(default_factory=list, sa_type=sa.JSON)  # audience CHOSEN: these people
    timezone: str = Field(max_length=64)
    created_by: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    closes_at: datetime = Field(index=True)
    remind_at: datetime | None = None
    channel_id: str = Field(max_length=32)
    message_ts: str | None = Field(default=None, max_length=32)
    status: PollStatus = Field(default=PollStatus.OPEN, sa_type=enum_column(PollStatus), index=True)
    closed_at: datetime | None = None
    closed_by: str | None = Field(default=None, max_length=32)  # None: closed on time by the scheduler
    closed_late: bool = False  # closed by the scheduler well after closes_at (the bot was down)
    refreshed_at: datetime | None = None  # the last in-place update of the message


class PollVote(SQLModel, table=True):
    """One pick (choice kinds: one row per picked option), one score, or one open answer.

    No Slack user id for an anonymous poll: `voter` is HMAC(key, poll, person), `user_id` stays NULL."""

    __table_args__ = (sa.UniqueConstraint("poll_id", "voter", "option"),)

    id: int | None = Field(default=None, primary_key=True)
    poll_id: int = Field(foreign_key="poll.id", index=True, ondelete="CASCADE")
    voter: str = Field(max_length=64)
    side: Side | None = Field(default=None, sa_type=enum_column(Side))
    option: int  # the option's index (choice kinds), the score (rating, NPS), TEXT_OPTION (open text)
    text: str | None = Field(default=None, max_length=POLL_ANSWER_MAX)
    user_id: str | None = Field(default=None, max_length=32)  # only when the poll is not anonymous
    voted_at: datetime | None = None  # when this pick or answer was made (None: recorded before this was kept)


# -- the tally ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Counted:
    """The counts of one group of respondents (everyone, or one side)."""

    respondents: int
    counts: list[int]  # per option (choice kinds) or per value (scales); empty for open text
    labels: list[str]
    answers: list[str] = field(default_factory=list)  # open text
    authors: list[str | None] = field(default_factory=list)  # each answer's author (None when anonymous)
    values: list[int] = field(default_factory=list)  # scales: each respondent's score

    def percent(self, i: int) -> int:
        """The share of respondents who picked option i (multiple choice: may add up to over 100)."""
        return round(100 * self.counts[i] / self.respondents) if self.respondents else 0

    @property
    def average(self) -> float | None:
        return sum(self.values) / len(self.values) if self.values else None

    @property
    def nps(self) -> int | None:
        """% promoters (9-10) minus % detractors (0-6), rounded; None without respondents."""
        if not self.values:
            return None
        promoters = sum(1 for v in self.values if v >= 9)
        detractors = sum(1 for v in self.values if v <= 6)
        return round(100 * (promoters - detractors) / len(self.values))

    @property
    def promoters(self) -> int:
        return sum(1 for v in self.values if v >= 9)

    @property
    def detractors(self) -> int:
        return sum(1 for v in self.values if v <= 6)


@dataclass(frozen=True)
class PollResults:
    total: Counted
    by_side: dict[Side, Counted]  # filled only when every side has enough respondents
    side_note: str | None  # why there are no per-side results although the audience spans both sides


def labels_of(kind: PollKind, options: Sequence[str]) -> list[str]:
    if kind == PollKind.RATING:
        return [str(v) for v in RATING_VALUES]
    if kind == PollKind.NPS:
        return [str(v) for v in NPS_VALUES]
    if kind == PollKind.TEXT:
        return []
    return list(options)


def value_index(kind: PollKind, option: int) -> int:
    """The position of a stored `option` among the labels (RATING starts at 1)."""
    return option - 1 if kind == PollKind.RATING else option


def count(kind: PollKind, options: Sequence[str], votes: Sequence[PollVote]) -> Counted:
    labels = labels_of(kind, options)
    counts = [0] * len(labels)
    values: list[int] = []
    answers: list[str] = []
    authors: list[str | None] = []
    for v in votes:
        if kind == PollKind.TEXT:
            if v.text:
                answers.append(v.text)
                authors.append(v.user_id)  # NULL in an anonymous poll's rows
            continue
        i = value_index(kind, v.option)
        if 0 <= i < len(counts):
            counts[i] += 1
            if kind in (PollKind.RATING, PollKind.NPS):
                values.append(v.option)
    return Counted(respondents=len({v.voter for v in votes}), counts=counts, labels=labels, answers=answers,
                   authors=authors, values=values)


def sides_shown(respondents_per_side: Mapping[Any, int], min_per_side: int) -> bool:
    """The one per-side rule of polls and pulse rounds: results by side only when the audience spans more than
    one side and each side of the audience (one nobody on answered included) has at least `min_per_side`
    respondents. Fewer would let people work out the answers of a small side (overall x n = ours x a + theirs
    x b); below it, totals only."""
    return len(respondents_per_side) > 1 and all(n >= max(min_per_side, 1) for n in respondents_per_side.values())


def tally(
    kind: PollKind, options: Sequence[str], votes: Sequence[PollVote], *, spans_sides: bool, min_per_side: int,
) -> PollResults:
    """Count the votes; per side too when the audience spans both organisations and each side has at least
    `min_per_side` respondents (fewer would let people guess who answered what)."""
    total = count(kind, options, votes)
    if not spans_sides:
        return PollResults(total, {}, None)
    per_side = Counter(side for _voter, side in {(v.voter, v.side) for v in votes})
    counted = {side: per_side.get(side, 0) for side in Side}
    if sides_shown(counted, min_per_side):
        by_side = {side: count(kind, options, [v for v in votes if v.side == side]) for side in Side}
        return PollResults(total, by_side, None)
    return PollResults(total, {}, f"Results per side appear once each side has at least {min_per_side} "
                                  "respondents.")
