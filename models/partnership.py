"""Partnerships, their people, their partner invitations and their audit trail."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.base import enum_column, utcnow

NAME_MAX = 80
PARTNER_ORG_MAX = 120
GOALS_MAX = 2000
REASON_MAX = 500
EMAIL_MAX = 254


class PartnershipStatus(StrEnum):
    CREATING = "creating"  # row exists, channel not made yet
    ACTIVE = "active"
    CLOSED = "closed"


class Role(StrEnum):
    OWNER = "owner"
    MEMBER = "member"
    SPONSOR = "sponsor"
    PARTNER_CONTACT = "partner_contact"


class Side(StrEnum):
    OURS = "ours"
    PARTNER = "partner"


class InvitationStatus(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    ACCEPTED = "accepted"  # the invited person joined the channel (matched by their email)


class Partnership(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=NAME_MAX)
    # Lower-cased name while the partnership is open; NULL once closed, so names can be reused.
    open_name_key: str | None = Field(default=None, max_length=NAME_MAX, unique=True)
    partner_org: str = Field(default="", max_length=PARTNER_ORG_MAX)
    goals: str = Field(default="", max_length=GOALS_MAX)
    timezone: str = Field(max_length=64)
    is_private: bool = False
    status: PartnershipStatus = Field(
        default=PartnershipStatus.CREATING, sa_type=enum_column(PartnershipStatus), index=True
    )
    team_id: str = Field(default="", max_length=32)
    channel_id: str | None = Field(default=None, max_length=32, unique=True)
    channel_name: str | None = Field(default=None, max_length=80)
    charter_ts: str | None = Field(default=None, max_length=32)
    # Set when the channel turned out archived or deleted outside Partnerbot: nothing is scheduled for the
    # partnership until the channel is back (unarchived).
    channel_archived_at: datetime | None = None
    # Idempotency key of the request that created it (a modal's view id, a command's trigger id).
    creation_key: str | None = Field(default=None, max_length=128, unique=True)
    created_by: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    closed_by: str | None = Field(default=None, max_length=32)
    closed_at: datetime | None = None
    close_reason: str | None = Field(default=None, max_length=REASON_MAX)


class Member(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("partnership_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    partnership_id: int = Field(foreign_key="partnership.id", index=True, ondelete="CASCADE")
    user_id: str = Field(max_length=32, index=True)
    role: Role = Field(sa_type=enum_column(Role))
    side: Side = Field(sa_type=enum_column(Side))
    added_by: str = Field(max_length=32)
    added_at: datetime = Field(default_factory=utcnow)
    # Set while the person is out of the partnership's channel (they left, or were removed in Slack): the row
    # stays, so history keeps their answers, but they count in no new audience. Joining again clears it.
    left_at: datetime | None = None
    # Slack's time of the last join or leave event applied to this row: an older event arriving late (a retry
    # Slack sends minutes after the first delivery) changes nothing.
    channel_event_at: datetime | None = None


class PartnerInvitation(SQLModel, table=True):
    """A Slack Connect invitation of a partner contact, by email."""

    __table_args__ = (sa.UniqueConstraint("partnership_id", "email"),)

    id: int | None = Field(default=None, primary_key=True)
    partnership_id: int = Field(foreign_key="partnership.id", index=True, ondelete="CASCADE")
    email: str = Field(max_length=EMAIL_MAX)
    status: InvitationStatus = Field(sa_type=enum_column(InvitationStatus))
    error: str | None = Field(default=None, max_length=64)
    invite_id: str | None = Field(default=None, max_length=64)
    attempts: int = 0
    invited_by: str = Field(max_length=32)
    updated_at: datetime = Field(default_factory=utcnow)
    # Who joined the channel with this invitation's address, and when (status ACCEPTED).
    accepted_by: str | None = Field(default=None, max_length=32)
    accepted_at: datetime | None = None


class AuditEvent(SQLModel, table=True):
    """Who did what to a partnership, and when."""

    id: int | None = Field(default=None, primary_key=True)
    partnership_id: int = Field(foreign_key="partnership.id", index=True, ondelete="CASCADE")
    actor_id: str = Field(max_length=32)
    action: str = Field(max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    at: datetime = Field(default_factory=utcnow, index=True)


class PendingConfirmation(SQLModel, table=True):
    """A request waiting for its requester to press a confirmation button (e.g. closing a partnership).

    The button carries only this row's id; what to do (`data`) stays on the server, so nothing a person
    typed has to fit into a button's value. `used_at` is set in the transaction that does the work, so a
    double click does it once. Any feature may add a `kind`.
    """

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    partnership_id: int = Field(foreign_key="partnership.id", index=True, ondelete="CASCADE")
    actor_id: str = Field(max_length=32)  # who asked, and the only person who may confirm
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow)
    used_at: datetime | None = None
