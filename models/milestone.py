"""Milestones of a partnership, kudos between its people, and the values kudos can be tagged with."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.base import enum_column, utcnow
from models.partnership import Side

TITLE_MAX = 150
DONE_MEANS_MAX = 1000
DONE_NOTE_MAX = 500
KUDOS_REASON_MAX = 500
VALUE_MAX = 30
VALUES_MAX = 10
DEFAULT_VALUES = ["trust", "communication", "delivery", "collaboration"]


class MilestoneStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class Milestone(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("partnership_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    partnership_id: int = Field(foreign_key="partnership.id", index=True, ondelete="CASCADE")
    number: int  # 1, 2, 3 … within its partnership: what people type (`/partner milestone done 3`)
    title: str = Field(max_length=TITLE_MAX)
    done_means: str = Field(default="", max_length=DONE_MEANS_MAX)
    due_date: date  # a local date in the partnership's time zone
    original_due_date: date  # the first due date; reschedules keep it for the history
    owners: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    celebrate: bool = True
    status: MilestoneStatus = Field(default=MilestoneStatus.OPEN, sa_type=enum_column(MilestoneStatus), index=True)
    # Bumped on every change of the due date, the owners or the status: planned reminders carry it.
    version: int = 1
    # How often it was marked done (a reopened milestone done again celebrates again, once per time).
    times_done: int = 0
    created_by: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    # The last change of its date, owners or status: reminders due before it are not planned (a milestone added
    # or rescheduled at 10:00 does not get the reminder of 09:00 that day).
    changed_at: datetime = Field(default_factory=utcnow)
    done_at: datetime | None = None
    done_on: date | None = None  # the local date it was marked done
    done_by: str | None = Field(default=None, max_length=32)
    # Who made it happen, with the side each was on when it was recorded ({"user": id, "side": "ours"}).
    contributors: list[dict[str, str]] = Field(default_factory=list, sa_type=sa.JSON)
    done_note: str = Field(default="", max_length=DONE_NOTE_MAX)
    cancelled_at: datetime | None = None
    cancelled_by: str | None = Field(default=None, max_length=32)


class Kudos(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    partnership_id: int = Field(foreign_key="partnership.id", index=True, ondelete="CASCADE")
    giver: str = Field(max_length=32)
    giver_side: Side = Field(sa_type=enum_column(Side))
    reason: str = Field(max_length=KUDOS_REASON_MAX)
    value: str | None = Field(default=None, max_length=VALUE_MAX)
    cross_org: bool = False  # at least one person thanked is on the other side from the giver
    # The request it came from (a command's trigger id): a repeated request records it once.
    request_key: str | None = Field(default=None, max_length=128, unique=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class KudosReceiver(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("kudos_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    kudos_id: int = Field(foreign_key="kudos.id", index=True, ondelete="CASCADE")
    user_id: str = Field(max_length=32, index=True)
    side: Side = Field(sa_type=enum_column(Side))


class PartnershipValues(SQLModel, table=True):
    """The values a partnership's kudos can be tagged with (the defaults until its owners change them)."""

    partnership_id: int = Field(foreign_key="partnership.id", primary_key=True, ondelete="CASCADE")
    values: list[str] = Field(default_factory=lambda: list(DEFAULT_VALUES), sa_type=sa.JSON)
    updated_by: str = Field(max_length=32)
    updated_at: datetime = Field(default_factory=utcnow)


@dataclass(frozen=True)
class Wins:
    """What a partnership achieved in a window: milestones reached, and kudos given and received."""

    reached: int
    on_time: int  # reached on or before their due date
    kudos: int
    cross_org: int  # kudos that thanked someone on the other side
    given: dict[str, int]  # person -> kudos given
    received: dict[str, int]  # person -> times thanked
    given_by_side: dict[Side, int]
    received_by_side: dict[Side, int]
    received_sides: dict[str, Side]  # the side each thanked person was on when thanked

    @property
    def on_time_share(self) -> float | None:
        return self.on_time / self.reached if self.reached else None

    @property
    def cross_share(self) -> float | None:
        return self.cross_org / self.kudos if self.kudos else None

    def most_thanked(self, side: Side, n: int = 3) -> list[tuple[str, int]]:
        """The people of one side thanked most (most first; ties by id, so the order is stable)."""
        people = [(u, c) for u, c in self.received.items() if self.received_sides.get(u) == side]
        return sorted(people, key=lambda uc: (-uc[1], uc[0]))[:n]

    @property
    def empty(self) -> bool:
        return not self.reached and not self.kudos


def tally_wins(done: list[Milestone], kudos: list[tuple[Kudos, list[KudosReceiver]]]) -> Wins:
    """Count milestones reached (`done`, already chosen by window) and kudos with their receivers."""
    on_time = sum(1 for m in done if m.done_on is not None and m.done_on <= m.due_date)
    given: Counter[str] = Counter()
    received: Counter[str] = Counter()
    given_by_side: Counter[Side] = Counter()
    received_by_side: Counter[Side] = Counter()
    sides: dict[str, Side] = {}
    for k, receivers in kudos:
        given[k.giver] += 1
        given_by_side[Side(k.giver_side)] += 1
        for r in receivers:
            received[r.user_id] += 1
            received_by_side[Side(r.side)] += 1
            sides[r.user_id] = Side(r.side)
    return Wins(
        reached=len(done), on_time=on_time, kudos=len(kudos), cross_org=sum(1 for k, _ in kudos if k.cross_org),
        given=dict(given), received=dict(received), given_by_side=dict(given_by_side),
        received_by_side=dict(received_by_side), received_sides=sides,
    )
