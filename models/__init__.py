"""SQLModel tables. Importing this package registers every table on SQLModel.metadata."""

from models.base import utcnow
from models.checkin import Away, CheckinAnswer, CheckinRound, CheckinSchedule, ParticipantMode, RoundStatus
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
from models.pulse import Audience, PulseResponse, PulseRound, PulseSchedule
from models.scheduling import Occurrence, OccurrenceState, SchedulerBeat

__all__ = [
    "Audience",
    "AuditEvent",
    "Away",
    "CheckinAnswer",
    "CheckinRound",
    "CheckinSchedule",
    "InvitationStatus",
    "Member",
    "Occurrence",
    "OccurrenceState",
    "ParticipantMode",
    "PartnerInvitation",
    "Partnership",
    "PartnershipStatus",
    "PulseResponse",
    "PulseRound",
    "PulseSchedule",
    "Role",
    "RoundStatus",
    "SchedulerBeat",
    "Side",
    "utcnow",
]
