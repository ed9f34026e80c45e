"""SQLModel tables. Importing this package registers every table on SQLModel.metadata."""

from models.base import utcnow
from models.partnership import (
    AuditEvent,
    InvitationStatus,
    Member,
    PartnerInvitation,
    Partnership,
    PartnershipStatus,
    Role,
    Side,
)

__all__ = [
    "AuditEvent",
    "InvitationStatus",
    "Member",
    "PartnerInvitation",
    "Partnership",
    "PartnershipStatus",
    "Role",
    "Side",
    "utcnow",
]
