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
from models.poll import Poll, PollVote
from models.scheduling import Occurrence, OccurrenceState, SchedulerBeat

__all__ = [
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
    "Poll",
    "PollVote",
    "Role",
    "RoundStatus",
    "SchedulerBeat",
    "Side",
    "utcnow",
]
