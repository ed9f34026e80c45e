"""Every message, modal and Home tab the app builds, with non-Latin text and &, < and > at each field's
maximum length: within Slack's limits, and every piece of user text escaped whole (no entity cut in two,
nothing that Slack would read as a mention or a link)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import available_timezones

import pytest

from blocks import checkins as cb
from blocks import issues as ib
from blocks import milestones as mb
from blocks import partnerships as pb
from blocks import polls as pollb
from blocks import pulse as plb
from blocks.partnerships import AUDIT_LABELS
from blocks.text import escape
from models.checkin import (
    ANSWER_MAX,
    QUESTION_MAX,
    QUESTIONS_MAX,
    CheckinAnswer,
    CheckinRound,
    CheckinSchedule,
    QuestionKind,
    Tally,
    questions_of,
    tally,
)
from models.issue import ISSUE_DESCRIPTION_MAX, ISSUE_TITLE_MAX, RESOLUTION_MAX, Issue, IssueEvent, IssueStatus
from models.milestone import (
    DONE_MEANS_MAX,
    DONE_NOTE_MAX,
    KUDOS_REASON_MAX,
    TITLE_MAX,
    VALUE_MAX,
    Kudos,
    KudosReceiver,
    Milestone,
    MilestoneStatus,
    Wins,
    tally_wins,
)
from models.partnership import (
    EMAIL_MAX,
    GOALS_MAX,
    NAME_MAX,
    PARTNER_ORG_MAX,
    REASON_MAX,
    AuditEvent,
    InvitationStatus,
    Member,
    PartnerInvitation,
    Partnership,
    PartnershipStatus,
    Role,
    Side,
)
from models.poll import (
    POLL_ANSWER_MAX,
    POLL_OPTION_MAX,
    POLL_OPTIONS_MAX,
    POLL_QUESTION_MAX,
    Poll,
    PollAudience,
    PollKind,
    PollResults,
    PollStatus,
    PollVote,
)
from models.poll import (
    tally as poll_tally,
)
from models.pulse import (
    OPEN_ANSWER_MAX,
    PULSE_QUESTION_MAX,
    PULSE_QUESTIONS_MAX,
    Audience,
    CadenceKind,
    PulseResults,
    PulseRound,
    PulseSchedule,
    QuestionResult,
)
from services.stats import summarize
from tests.blocks.blockkit import assert_valid_message_blocks, assert_valid_view, mrkdwn_texts
from tests.support.text import UNIT, at_limit

NOW = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
ZONE = max(sorted(available_timezones()), key=len)  # the longest IANA name
PEOPLE = [f"U{i:04d}" for i in range(40)]
RESPONSE_URL = "https://hooks.slack.com/commands/T0OURS/" + "1" * 40 + "/" + "x" * 64
ROUND_KEY = "checkin:1:now:" + "x" * 120


@dataclass
class Data:
    """Everything a builder shows, with every text field at its limit (`shift` moves where cuts land)."""

    shift: int

    def text(self, limit: int) -> str:
        return at_limit(limit, self.shift)

    @property
    def name(self) -> str:
        return self.text(NAME_MAX)

    @property
    def questions(self) -> list[str]:
        return [self.text(QUESTION_MAX)] * QUESTIONS_MAX

    @property
    def kinds(self) -> list[str]:  # blockers and needs: every answer is listed in the summary, with a button
        return [(QuestionKind.BLOCKER if i % 2 else QuestionKind.NEED).value for i in range(QUESTIONS_MAX)]

    @property
    def answers(self) -> list[str]:
        return [self.text(ANSWER_MAX)] * QUESTIONS_MAX

    def partnership(self, **kw: Any) -> Partnership:
        values: dict[str, Any] = dict(
            id=1, name=self.name, partner_org=self.text(PARTNER_ORG_MAX), goals=self.text(GOALS_MAX), timezone=ZONE,
            created_by="U0000", channel_id="C1", status=PartnershipStatus.CLOSED, created_at=NOW, closed_by="U0000",
            closed_at=NOW, close_reason=self.text(REASON_MAX),
        )
        values.update(kw)
        return Partnership(**values)

    @property
    def members(self) -> list[Member]:
        return [Member(partnership_id=1, user_id=u, role=list(Role)[i % 4], side=list(Side)[i % 2],
                       added_by="U0000") for i, u in enumerate(PEOPLE)]

    @property
    def invitations(self) -> list[PartnerInvitation]:
        return [PartnerInvitation(partnership_id=1, email=self.text(EMAIL_MAX), status=InvitationStatus.FAILED,
                                  error="x" * 64, invited_by="U0000") for _ in range(25)]

    @property
    def audit(self) -> list[AuditEvent]:
        detail = {"user": "U0001", "role": "partner_contact", "email": self.text(EMAIL_MAX), "status": "failed",
                  "weekdays": "mon,tue,wed,thu,fri,sat,sun", "local_time": "09:30", "timezone": ZONE,
                  "cadence": f"monthly on the last Wednesday at 07:45 ({ZONE})",
                  "reason": self.text(REASON_MAX), "number": 2**31, "kind": "multiple", "issue": 2**31}
        return [AuditEvent(partnership_id=1, actor_id="U0000", action=a, at=NOW, detail=detail) for a in AUDIT_LABELS]

    @property
    def round(self) -> CheckinRound:
        return CheckinRound(
            id=1, key=ROUND_KEY, partnership_id=1, local_date=date(2026, 3, 2), timezone=ZONE,
            scheduled_for=NOW - timedelta(hours=1), opened_at=NOW, closes_at=NOW + timedelta(hours=4), delayed=True,
            manual=True, started_by="U0000", questions=self.questions, question_kinds=self.kinds, participants=PEOPLE,
            away=PEOPLE[:5], channel_id="C1", prompt_ts="1.0", status="closed", closed_at=NOW + timedelta(hours=4),
        )

    @property
    def tally(self) -> Tally:
        answers = [CheckinAnswer(id=2**31 - i, round_id=1, user_id=u, answers=self.answers)
                   for i, u in enumerate(PEOPLE[5:])]
        return tally(self.round, answers, away_now=set())

    @property
    def schedule(self) -> CheckinSchedule:
        return CheckinSchedule(partnership_id=1, weekdays="mon,tue,wed,thu,fri,sat,sun", local_time="07:45",
                               timezone=ZONE, questions=self.questions, question_kinds=self.kinds, window_minutes=90,
                               remind_before_close_minutes=45, participants=PEOPLE, updated_by="U0000")

    def milestone(self, number: int = 1, **kw: Any) -> Milestone:
        values: dict[str, Any] = dict(
            id=2**31 - number, partnership_id=1, number=10**6 + number, title=self.text(TITLE_MAX),
            done_means=self.text(DONE_MEANS_MAX), due_date=date(2026, 3, 20), original_due_date=date(2026, 2, 27),
            owners=PEOPLE, created_by="U0000", done_on=date(2026, 5, 30), done_by="U0000",
            contributors=[{"user": u, "side": list(Side)[i % 2].value} for i, u in enumerate(PEOPLE)],
            done_note=self.text(DONE_NOTE_MAX), status=MilestoneStatus.DONE,
        )
        values.update(kw)
        return Milestone(**values)

    @property
    def wins(self) -> Wins:
        kudos = [(Kudos(partnership_id=1, giver=u, giver_side=list(Side)[i % 2], reason="r", cross_org=True),
                  [KudosReceiver(kudos_id=0, user_id=v, side=list(Side)[j % 2]) for j, v in enumerate(PEOPLE)])
                 for i, u in enumerate(PEOPLE)]
        return tally_wins(self.milestones, kudos)

    @property
    def milestones(self) -> list[Milestone]:
        return [self.milestone(i) for i in range(60)]

    @property
    def pulse_questions(self) -> list[dict[str, str]]:
        kinds = ["rating"] * (PULSE_QUESTIONS_MAX - 2) + ["open", "open"]
        return [{"text": self.text(PULSE_QUESTION_MAX), "kind": k} for k in kinds]

    @property
    def pulse_round(self) -> PulseRound:
        return PulseRound(
            id=1, key=ROUND_KEY, partnership_id=1, local_date=date(2026, 3, 2), timezone=ZONE,
            scheduled_for=NOW, opened_at=NOW, closes_at=NOW + timedelta(days=14), manual=True, started_by="U0000",
            questions=self.pulse_questions, anonymous=False, audience=Audience.BOTH,
            asked={"ours": PEOPLE[:20], "partner": PEOPLE[20:]}, channel_id="C1", message_ts="1.0",
            status="closed", closed_at=NOW + timedelta(days=14),
        )

    @property
    def pulse_results(self) -> PulseResults:
        ratings = [("ours", 5)] * 20 + [("partner", 1)] * 20
        questions = [QuestionResult(q["text"], summarize(ratings, ("ours", "partner"), min_per_side=3, previous=2.5))
                     for q in self.pulse_questions if q["kind"] == "rating"]
        answers = [self.text(OPEN_ANSWER_MAX)] * 40
        return PulseResults(questions, {"ours": (20, 20), "partner": (20, 20)},
                            [(q["text"], answers) for q in self.pulse_questions if q["kind"] == "open"], PEOPLE, 3)

    @property
    def pulse_schedule(self) -> PulseSchedule:
        return PulseSchedule(partnership_id=1, cadence=CadenceKind.MONTHLY, nth=-1, weekday="wed",
                             anchor_date=date(2026, 3, 2), local_time="07:45", timezone=ZONE, open_days=14,
                             questions=self.pulse_questions, updated_by="U0000")

    def poll(self, kind: PollKind = PollKind.MULTIPLE, *, closed: bool = False, **kw: Any) -> Poll:
        values: dict[str, Any] = dict(
            id=2**31, partnership_id=1, number=2**31, creation_key="k", question=self.text(POLL_QUESTION_MAX),
            kind=kind, options=[self.text(POLL_OPTION_MAX)[:-2] + f"{i:02d}" for i in range(POLL_OPTIONS_MAX)]
            if kind.is_choice else [], max_picks=3, anonymous=True, audience=PollAudience.CHOSEN, chosen=PEOPLE,
            timezone=ZONE, created_by="U0000", created_at=NOW, closes_at=NOW + timedelta(days=90),
            channel_id="C1", message_ts="1.0", status=PollStatus.CLOSED if closed else PollStatus.OPEN,
            closed_at=NOW + timedelta(days=91) if closed else None, closed_late=closed)
        values.update(kw)
        return Poll(**values)

    def poll_results(self, kind: PollKind = PollKind.MULTIPLE) -> PollResults:
        n = 11 if kind == PollKind.NPS else 10
        votes = [PollVote(poll_id=1, voter=u, option=(i % n) + (1 if kind == PollKind.RATING else 0) % n,
                          side=list(Side)[i % 2], text=self.text(POLL_ANSWER_MAX)) for i, u in enumerate(PEOPLE)]
        if kind == PollKind.RATING:
            votes = [PollVote(poll_id=1, voter=v.voter, option=(v.option % 5) + 1, side=v.side) for v in votes]
        return poll_tally(kind, self.poll(kind).options, votes, spans_sides=True, min_per_side=1)

    def poll_listed(self) -> list[Any]:
        from services.polls import Listed
        link = "https://fake.slack.test/archives/C1/p" + "1" * 16
        return [Listed(self.poll(closed=i % 2 == 1, number=i), 40, link) for i in range(30)]

    def issue(self, status: IssueStatus = IssueStatus.RESOLVED) -> Issue:
        return Issue(id=2**31, partnership_id=1, number=10**6, title=self.text(ISSUE_TITLE_MAX),
                     description=self.text(ISSUE_DESCRIPTION_MAX), severity="critical", status=status,
                     reporter="U0000", owner_ours="U0001", owner_partner="U0002", due_date=date(2026, 3, 20),
                     source_link="https://fake.slack.test/archives/C1/p" + "1" * 16, channel_id="C1", created_at=NOW,
                     resolution=self.text(RESOLUTION_MAX), ack_target_s=3600, res_target_s=86400)

    @property
    def clocks(self) -> list[ib.ClockView]:
        return [ib.ClockView("ack", "1 h", None, "1 h left", False, False, False, True),
                ib.ClockView("resolve", "30 days", NOW, "29 days 23 h late", True, True, False, None)]

    @property
    def issue_events(self) -> list[IssueEvent]:
        return [IssueEvent(issue_id=1, at=NOW, actor="U0000", action="resolved", detail={"note": self.text(500)})
                for _ in range(100)]

    @property
    def listed(self) -> list[tuple[Partnership, Role]]:
        return [(self.partnership(id=i, status=PartnershipStatus.ACTIVE), Role.PARTNER_CONTACT) for i in range(120)]


MESSAGES: dict[str, Callable[[Data], list[dict[str, Any]]]] = {
    "charter_blocks": lambda d: pb.charter_blocks(d.partnership(status=PartnershipStatus.ACTIVE), d.members),
    "info_blocks": lambda d: pb.info_blocks(d.partnership(), d.members, d.invitations, d.audit),
    "list_blocks": lambda d: pb.list_blocks(d.listed),
    "close_confirm_blocks": lambda d: pb.close_confirm_blocks(d.partnership(), d.text(REASON_MAX), 2**31),
    "closing_summary_blocks": lambda d: pb.closing_summary_blocks(d.partnership(), d.members, "U0000"),
    "prompt_blocks": lambda d: cb.prompt_blocks(d.name, d.round, round_key=ROUND_KEY),
    "summary_blocks": lambda d: cb.summary_blocks(d.name, d.round, d.tally),
    "answer_reply_blocks": lambda d: cb.answer_reply_blocks("U0001", d.questions, d.answers),
    "reminder_blocks": lambda d: cb.reminder_blocks(d.name, d.round, round_key=ROUND_KEY),
    "overview_blocks": lambda d: cb.overview_blocks(d.name, d.schedule, next_due=NOW, participants=PEOPLE,
                                                    away={u: date(2026, 12, 24) for u in PEOPLE}),
    "history_blocks": lambda d: cb.history_blocks(d.name, [(d.round, d.tally)] * 10),
    "survey_blocks": lambda d: plb.survey_blocks(d.name, d.pulse_round, asked=len(PEOPLE)),
    "results_blocks": lambda d: plb.results_blocks(d.name, d.pulse_round, d.pulse_results),
    "question_lines": lambda d: plb.question_lines(d.pulse_results),
    "open_answers_blocks": lambda d: plb.open_answers_blocks(d.pulse_results.open_answers),
    "pulse_reminder_blocks": lambda d: plb.reminder_blocks(d.name, d.pulse_round),
    "pulse_overview_blocks": lambda d: plb.overview_blocks(d.name, d.pulse_schedule, next_due=NOW,
                                                           last=(d.pulse_round, d.pulse_results),
                                                           current=d.pulse_round),
    "note_blocks": lambda d: mb.note_blocks(mb.rescheduled_text(d.milestone(), date(2026, 3, 1), "U0000")),
    "overdue_blocks": lambda d: mb.overdue_blocks(d.milestone(status=MilestoneStatus.OPEN), 10**4),
    "due_reminder_blocks": lambda d: mb.due_reminder_blocks(d.name, d.milestone(status=MilestoneStatus.OPEN), 7),
    "celebration_blocks": lambda d: mb.celebration_blocks(d.name, d.milestone(), d.text(PARTNER_ORG_MAX)),
    "kudos_blocks": lambda d: mb.kudos_blocks("U0000", PEOPLE, d.text(KUDOS_REASON_MAX), d.text(VALUE_MAX), True),
    "milestone_list_blocks": lambda d: mb.milestone_list_blocks(
        d.name, upcoming=d.milestones[:30], overdue=d.milestones[30:], done=d.milestones, today=date(2026, 3, 2),
        total_open=60),
    "wins_blocks": lambda d: mb.wins_blocks(d.name, d.wins, "the last 90 days", d.text(PARTNER_ORG_MAX)),
    "recap_blocks": lambda d: mb.recap_blocks(d.name, d.wins, "February 2026", d.text(PARTNER_ORG_MAX)),
    **{f"poll_blocks[{k.value}{'-closed' if closed else ''}]": (
        lambda d, k=k, closed=closed: pollb.poll_blocks(d.poll(k, closed=closed, anonymous=False), d.partnership(),
                                                      d.poll_results(k)))
       for k in PollKind for closed in (False, True)},
    "results_dm_blocks": lambda d: pollb.results_dm_blocks(d.poll(PollKind.TEXT, closed=True), d.partnership(),
                                                         d.poll_results(PollKind.TEXT)),
    "answers_blocks": lambda d: pollb.answers_blocks(d.poll(PollKind.TEXT, closed=True),
                                                   d.poll_results(PollKind.TEXT)),
    "reminder_blocks[poll]": lambda d: pollb.reminder_blocks(d.poll(), d.name, "https://x.test/" + "p" * 3000),
    "list_blocks[poll]": lambda d: pollb.list_blocks(d.name, d.poll_listed()),
    **{f"card_blocks[{st.value}]": (lambda d, st=st: ib.card_blocks(d.issue(st), d.name, d.clocks, now=NOW))
       for st in IssueStatus},
    "detail_blocks": lambda d: ib.detail_blocks(d.issue(), d.name, d.clocks, d.issue_events, now=NOW),
    "list_blocks[issue]": lambda d: ib.list_blocks(d.name, "open", [
        ib.list_line(d.issue(IssueStatus.OPEN), "acknowledge: 1 h left", "https://fake.slack.test/p1")] * 60, 60),
    "stats_blocks": lambda d: ib.stats_blocks(d.name, ib.CountsView(
        10**6, 10**6, [("critical", 10**6)] * 4, [(s.value, 10**6) for s in IssueStatus]), [ib.FiguresView(
            days, 10**6, [("critical", 10**6)] * 4, "1 day", "n/a", 0.5, None) for days in (30, 90)]),
}
VIEWS: dict[str, Callable[[Data], dict[str, Any]]] = {
    "new_partnership_modal": lambda d: pb.new_partnership_modal(default_timezone=ZONE, creator="U0000", name=d.name,
                                                                response_url=RESPONSE_URL),
    "home_view": lambda d: pb.home_view(d.listed),
    "answer_modal": lambda d: cb.answer_modal(d.name, d.round, round_key=ROUND_KEY, answers=d.answers),
    "setup_modal": lambda d: cb.setup_modal(partnership_id=2**31, partnership_name=d.name, timezone=ZONE,
                                            schedule=d.schedule, response_url=RESPONSE_URL),
    "questions_modal": lambda d: cb.questions_modal(partnership_id=2**31, partnership_name=d.name,
                                                    questions=questions_of(d.schedule)),
    "survey_modal": lambda d: plb.survey_modal(d.name, d.pulse_round, ratings=[5] * PULSE_QUESTIONS_MAX,
                                               answers=[d.text(OPEN_ANSWER_MAX)] * PULSE_QUESTIONS_MAX),
    "pulse_setup_modal": lambda d: plb.setup_modal(partnership_id=2**31, partnership_name=d.name, timezone=ZONE,
                                                   schedule=d.pulse_schedule, response_url=RESPONSE_URL),
    "milestone_modal": lambda d: mb.milestone_modal(partnership_id=2**31, partnership_name=d.name,
                                                    today=date(2026, 3, 2), response_url=RESPONSE_URL),
    "milestone_modal_edit": lambda d: mb.milestone_modal(partnership_id=2**31, partnership_name=d.name,
                                                         milestone=d.milestone(), response_url=RESPONSE_URL),
    "done_modal": lambda d: mb.done_modal(d.name, d.milestone(), response_url=RESPONSE_URL),
    "reschedule_modal": lambda d: mb.reschedule_modal(d.name, d.milestone(), response_url=RESPONSE_URL),
    "poll_modal": lambda d: pollb.poll_modal(partnership_id=2**31, partnership_name=d.name, timezone=ZONE,
                                           response_url=RESPONSE_URL, question=d.text(POLL_QUESTION_MAX),
                                           options=d.poll().options, anonymous=True, closes="2026-03-05 17:00"),
    "answer_modal[poll]": lambda d: pollb.answer_modal(d.poll(PollKind.TEXT), current=d.text(POLL_ANSWER_MAX)),
    "issue_modal": lambda d: ib.issue_modal(partnership=d.name, meta={"response_url": RESPONSE_URL},
                                            severities=["low", "normal", "high", "critical"],
                                            title=d.text(ISSUE_TITLE_MAX), description=d.text(ISSUE_DESCRIPTION_MAX),
                                            reporter="U0000"),
    "assign_modal": lambda d: ib.assign_modal(d.issue(IssueStatus.OPEN), {"issue_id": 1}),
    "resolve_modal": lambda d: ib.resolve_modal(d.issue(IssueStatus.OPEN), {"issue_id": 1}),
    "escalate_modal": lambda d: ib.escalate_modal(d.issue(IssueStatus.OPEN), {"issue_id": 1}),
    "edit_modal": lambda d: ib.edit_modal(d.issue(IssueStatus.OPEN), {"issue_id": 1, "was": {"title": "0" * 12}},
                                          ["low", "normal", "high", "critical"]),
    "sla_modal": lambda d: ib.sla_modal(d.name, [("critical", "1 h", "1 day")] * 4, True, "mon-fri", "09:00",
                                        "17:00", {"partnership_id": 1}),
}
SHIFTS = [Data(shift) for shift in range(len(UNIT))]

# Entities, mentions and channel links from ids, Slack date tokens, and links to the bot's own messages (labelled
# with escaped text: a poll's number, an issue's title).
_OURS = re.compile(r"&(?:amp|lt|gt);|<[@#][A-Z0-9]+>|<!date\^\d+\^[^|<>]+\|[^<>]+>"
                   r"|<https://[^|<>\s]+\|(?:[^&<>|]|&(?:amp|lt|gt);)+>")


def _escaped_whole(texts: str) -> bool:
    """No &, < or > left besides whole entities and the bot's own mentions (nothing cut in two)."""
    return not re.search(r"[&<>]", _OURS.sub("", texts))


def test_every_builder_is_checked_here() -> None:
    modules = (pb, cb, plb, mb, pollb, ib)
    built = {name for module in modules for name, fn in inspect.getmembers(module, inspect.isfunction)
             if fn.__module__ == module.__name__ and not name.startswith("_")
             and inspect.signature(fn).return_annotation in ("list[Block]", "dict[str, Any]")}
    renamed = {"pulse_reminder_blocks": "reminder_blocks", "pulse_overview_blocks": "overview_blocks",
               "pulse_setup_modal": "setup_modal"}  # same names as the check-in builders
    assert built == {renamed.get(n, n).split("[")[0] for n in set(MESSAGES) | set(VIEWS) - {"milestone_modal_edit"}}


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_messages_stay_within_slacks_limits(name: str) -> None:
    for data in SHIFTS:
        assert_valid_message_blocks(MESSAGES[name](data))


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_views_stay_within_slacks_limits(name: str) -> None:
    for data in SHIFTS:
        assert_valid_view(VIEWS[name](data))


@pytest.mark.parametrize("name", sorted(MESSAGES) + sorted(VIEWS))
def test_user_text_is_escaped_whole_wherever_it_is_cut(name: str) -> None:
    for data in SHIFTS:
        built = MESSAGES[name](data) if name in MESSAGES else VIEWS[name](data)["blocks"]
        assert _escaped_whole(mrkdwn_texts(built)), (name, data.shift)


def test_the_close_question_shows_the_longest_reason_whole_and_its_button_carries_an_id() -> None:
    for data in SHIFTS:
        reason = data.text(REASON_MAX)
        question, buttons = pb.close_confirm_blocks(data.partnership(), reason, 42)[-2:]
        assert escape(reason) in mrkdwn_texts(question)
        assert buttons["elements"][0]["value"] == "42"
