"""SQLModel tables. Importing this package registers every table on SQLModel.metadata."""

from models.base import utcnow
from models.checkin import Away, CheckinAnswer, CheckinRound, CheckinSchedule, ParticipantMode, RoundStatus
from models.issue import Issue, IssueEvent, IssueSlaSettings, IssueSource, IssueStatus
from models.milestone import Kudos, KudosReceiver, Milestone, MilestoneStatus, PartnershipValues
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
    "Issue",
    "IssueEvent",
    "IssueSlaSettings",
    "IssueSource",
    "IssueStatus",
    "Kudos",
    "KudosReceiver",
    "Member",
    "Milestone",
    "MilestoneStatus",
    "Occurrence",
    "OccurrenceState",
    "ParticipantMode",
    "PartnerInvitation",
    "Partnership",
    "PartnershipStatus",
    "PartnershipValues",
    "Poll",
    "PollVote",
    "PulseResponse",
    "PulseRound",
    "PulseSchedule",
    "Role",
    "RoundStatus",
    "SchedulerBeat",
    "Side",
    "utcnow",
]
