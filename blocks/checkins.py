"""Block Kit for check-ins: the prompt and its summary, answers in the thread, the reminder, the modals,
the schedule overview and the history. Times are shown in the partnership's time zone."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Protocol

from blocks import ids
from blocks.kit import (
    MESSAGE_BLOCKS_MAX,
    SECTION_MAX,
    Block,
    actions,
    button,
    cap_blocks,
    chunked_sections,
    context,
    header,
    input_block,
    option,
    plain,
    section,
)
from blocks.text import channel_link, escape, escape_within, local_time, mention, truncate
from models.checkin import (
    ANSWER_MAX,
    DEFAULT_QUESTIONS,
    DEFAULT_WINDOW_MINUTES,
    KIND_PREFIXES,
    QUESTION_MAX,
    QUESTIONS_MAX,
    WEEKDAYS,
    CheckinRound,
    CheckinSchedule,
    Flagged,
    ParticipantMode,
    Question,
    QuestionKind,
    Tally,
    questions_of,
)

DAY_NAMES = {"mon": "Mon", "tue": "Tue", "wed": "Wed", "thu": "Thu", "fri": "Fri", "sat": "Sat", "sun": "Sun"}
WINDOW_CHOICES = [(30, "30 minutes"), (60, "1 hour"), (120, "2 hours"), (240, "4 hours"), (480, "8 hours"),
                  (720, "12 hours"), (1440, "24 hours")]
REMINDER_CHOICES = [("half", "Halfway through the window"), ("60", "1 hour before it closes"),
                    ("30", "30 minutes before it closes"), ("0", "No reminder")]


def _time(moment: datetime, zone: str) -> str:
    return local_time(moment, zone, "%H:%M")


def _day(day: date) -> str:
    return day.strftime("%A %d %B").replace(" 0", " ")


def _people(users: Sequence[str]) -> str:
    return ", ".join(mention(u) for u in users) if users else "_nobody_"


def schedule_line(schedule: CheckinSchedule) -> str:
    days = ", ".join(DAY_NAMES[d] for d in schedule.weekdays.split(",") if d in DAY_NAMES)
    return f"{days} at {schedule.local_time} ({escape(schedule.timezone)})"


def window_text(minutes: int) -> str:
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour" + ("s" if hours != 1 else "")
    return f"{minutes} minutes"


def reminder_text(schedule: CheckinSchedule) -> str:
    remind = schedule.remind_before_close_minutes
    if remind == 0:
        return "no reminder"
    if remind is None:
        return "one reminder halfway through"
    return f"one reminder {window_text(remind)} before it closes"


# -- the prompt and its summary ---------------------------------------------------------------------
def prompt_text(partnership_name: str) -> str:
    return f"Check-in time for {escape(partnership_name)}: press Answer to reply."


class PromptRound(Protocol):
    """What a prompt shows of its round (a CheckinRound, or one about to open)."""

    @property
    def questions(self) -> Sequence[str]: ...
    @property
    def participants(self) -> Sequence[str]: ...
    @property
    def away(self) -> Sequence[str]: ...
    @property
    def local_date(self) -> date: ...
    @property
    def closes_at(self) -> datetime: ...
    @property
    def scheduled_for(self) -> datetime: ...
    @property
    def timezone(self) -> str: ...
    @property
    def delayed(self) -> bool: ...
    @property
    def manual(self) -> bool: ...
    @property
    def started_by(self) -> str | None: ...


def prompt_blocks(partnership_name: str, r: PromptRound, *, round_key: str) -> list[Block]:
    questions = "\n".join(f"{i}. {escape(q)}" for i, q in enumerate(r.questions, 1))
    expected = [u for u in r.participants if u not in r.away]
    blocks: list[Block] = [
        header(f"Check-in: {partnership_name}"),
        section(f"*{_day(r.local_date)}* · please answer by *{_time(r.closes_at, r.timezone)}*\n{questions}"),
    ]
    if r.delayed:
        blocks.append(context(
            f":hourglass: Delayed: this check-in was due at {_time(r.scheduled_for, r.timezone)} and is posted "
            f"late because Partnerbot was not running then."
        ))
    who = f"*Taking part:* {_people(expected)}"
    if r.away:
        who += f" · {len(r.away)} away"
    blocks.append(section(truncate(who, 2900)))
    blocks.append(actions(button("Answer", ids.CHECKIN_ANSWER, round_key, style="primary"),
                          block_id="checkin_actions"))
    if r.manual and r.started_by:
        blocks.append(context(f"Started by {mention(r.started_by)} with `/partner checkin now`."))
    return blocks


def summary_text(partnership_name: str, t: Tally) -> str:
    return f"Check-in closed for {escape(partnership_name)}: {len(t.answered)} of {t.expected} answered."


def summary_blocks(partnership_name: str, r: CheckinRound, t: Tally) -> list[Block]:
    rate = f"{round(t.rate * 100)}%" if t.rate is not None else "n/a"
    closed = r.closed_at or r.closes_at
    blocks: list[Block] = [
        header(f"Check-in: {partnership_name} (closed)"),
        section(
            f"*{_day(r.local_date)}* · closed at {_time(closed, r.timezone)}\n"
            f"*Participation:* {len(t.answered)} of {t.expected} answered ({rate})"
            + (f" · {len(t.away)} away" if t.away else "")
        ),
        section(truncate(f"*Answered:* {_people(t.answered + t.extra)}", 2900)),
        section(truncate(f"*Missing:* {_people(t.missing)}", 2900)),
    ]
    if t.away:
        blocks.append(section(truncate(f"*Away:* {_people(t.away)}", 2900)))
    if r.undelivered:
        lines = [f"{mention(u['user'])} (`{escape(u['error'])}`{UNDELIVERED_WHY.get(u['error'], '')})"
                 for u in r.undelivered]
        blocks.append(section(truncate("*Could not be reminded:* " + ", ".join(lines), 2900)))
    # Blocker and need answers, one block each (for its button), under a heading per kind the round asked;
    # past Slack's block cap both kinds keep a fair share and the rest is counted (all are in the thread).
    groups = [(kind, t.of_kind(kind)) for kind in (QuestionKind.BLOCKER, QuestionKind.NEED) if kind in t.asked]
    room = MESSAGE_BLOCKS_MAX - len(blocks) - len(groups) - 1  # the headings, and the closing note
    shown = _fair_shares(room, [len(found) for _, found in groups])
    for (kind, found), count in zip(groups, shown, strict=True):
        if not found:
            blocks.append(section(f"*{KIND_HEADINGS[kind]}:* none reported"))
            continue
        blocks.append(section(f"*{KIND_HEADINGS[kind]}*"))
        blocks += [flagged_block(f) for f in found[:count]]
    hidden = len(t.flagged) - sum(shown)
    blocks.append(context(f"…and {hidden} more blocker and need answer{'s' if hidden != 1 else ''}: all the answers "
                          "are in this message's thread." if hidden else "The answers are in this message's thread."))
    return cap_blocks(blocks)


def _fair_shares(room: int, counts: Sequence[int]) -> list[int]:
    """How many of each group fit in `room`: smaller groups whole, the rest split evenly."""
    shares = [0] * len(counts)
    left = max(room, 0)
    for n, i in enumerate(sorted(range(len(counts)), key=lambda i: counts[i])):
        shares[i] = min(counts[i], left // (len(counts) - n))
        left -= shares[i]
    return shares


# The summary's headings of the answers to blocker and need questions.
KIND_HEADINGS = {QuestionKind.BLOCKER: "Blockers", QuestionKind.NEED: "Needs from the partner"}
# How the overview marks a question's kind.
KIND_TAGS = {QuestionKind.PLAIN: "", QuestionKind.BLOCKER: " _(blocker)_",
             QuestionKind.NEED: " _(need from the partner)_"}


def flagged_block(f: Flagged) -> Block:
    """One blocker or need answer, with its author and a button that logs it as an issue
    (value `<answer id>:<question index>`; the issue log reads the answer from there)."""
    answer, question = escape_within(truncate(f.answer, 500), 2000), escape_within(f.question, 600)
    block = section(f"{mention(f.user_id)}: {answer} _({question})_")
    block["accessory"] = button("Log as issue", ids.ISSUE_FROM_ANSWER, f"{f.answer_id}:{f.index}")
    return block


def question_lines(questions: Sequence[Question]) -> str:
    """Numbered questions with their kinds marked (overview)."""
    return "\n".join(f"{i}. {escape(q.text)}{KIND_TAGS[q.kind]}" for i, q in enumerate(questions, 1))


def answer_reply_text(user_id: str) -> str:
    return f"{mention(user_id)} answered the check-in"


def answer_reply_blocks(user_id: str, questions: Sequence[str], answers: Sequence[str]) -> list[Block]:
    blocks: list[Block] = [section(f"{mention(user_id)} answered:")]
    for question, answer in zip(questions, answers, strict=False):
        head = f"*{escape(question)}*\n"
        text = escape_within(answer.strip(), SECTION_MAX - len(head)) if answer.strip() else "_no answer_"
        blocks.append(section(head + text))
    return blocks


def reminder_text_for(partnership_name: str) -> str:
    return f"Reminder: the {escape(partnership_name)} check-in is waiting for your answer."


def reminder_blocks(partnership_name: str, r: CheckinRound, *, round_key: str) -> list[Block]:
    return [
        section(
            f":wave: Reminder: the *{escape(partnership_name)}* check-in in {channel_link(r.channel_id)} closes at "
            f"*{_time(r.closes_at, r.timezone)}* and is waiting for your answer."
        ),
        actions(button("Answer", ids.CHECKIN_ANSWER, round_key, style="primary"), block_id="checkin_actions"),
        context("Away? `/partner away until YYYY-MM-DD` pauses prompts and reminders for you."),
    ]


# -- modals ---------------------------------------------------------------------------------------------
def answer_modal(partnership_name: str, r: CheckinRound, *, round_key: str, answers: Sequence[str]) -> dict[str, Any]:
    blocks: list[Block] = [section(
        f"*{escape(partnership_name)}* · {_day(r.local_date)} · closes at {_time(r.closes_at, r.timezone)}"
    )]
    for i, question in enumerate(r.questions):
        element: dict[str, Any] = {"type": "plain_text_input", "multiline": True, "max_length": ANSWER_MAX}
        if i < len(answers) and answers[i]:
            element["initial_value"] = answers[i][:ANSWER_MAX]
        blocks.append(input_block(answer_field(i), truncate(question, 2000), element, optional=True))
    return {
        "type": "modal",
        "callback_id": ids.CHECKIN_ANSWER_VIEW,
        "title": plain("Check-in"),
        "submit": plain("Update" if any(answers) else "Send"),
        "close": plain("Cancel"),
        "private_metadata": json.dumps({"round": round_key}),
        "blocks": blocks,
    }


def answer_field(index: int) -> str:
    return f"q{index}"


def setup_modal(
    *, partnership_id: int, partnership_name: str, timezone: str, schedule: CheckinSchedule | None,
    response_url: str | None = None,
) -> dict[str, Any]:
    days = schedule.weekdays.split(",") if schedule else ["mon", "wed", "fri"]
    day_options = [option(DAY_NAMES[d], d) for d in WEEKDAYS]
    window = schedule.window_minutes if schedule else DEFAULT_WINDOW_MINUTES
    window_options = [option(label, str(minutes)) for minutes, label in WINDOW_CHOICES]
    if window not in [m for m, _ in WINDOW_CHOICES]:
        window_options.append(option(window_text(window), str(window)))
    remind = schedule.remind_before_close_minutes if schedule else None
    remind_value = "half" if remind is None else str(remind)
    remind_options = [option(label, value) for value, label in REMINDER_CHOICES]
    if remind_value not in [v for v, _ in REMINDER_CHOICES]:
        remind_options.append(option(f"{window_text(int(remind_value))} before it closes", remind_value))
    mode = schedule.participant_mode if schedule else ParticipantMode.ALL
    mode_options = [option("All members of the partnership, both sides", ParticipantMode.ALL.value),
                    option("Only the people chosen below", ParticipantMode.CHOSEN.value)]
    people: dict[str, Any] = {"type": "multi_users_select"}
    if schedule and schedule.participants:
        people["initial_users"] = schedule.participants
    questions = questions_of(schedule) if schedule else DEFAULT_QUESTIONS
    return {
        "type": "modal",
        "callback_id": ids.CHECKIN_SETUP_VIEW,
        "title": plain("Check-in schedule"),
        "submit": plain("Save"),
        "close": plain("Cancel"),
        "private_metadata": json.dumps({"partnership_id": partnership_id, "response_url": response_url}),
        "blocks": [
            section(f"Scheduled check-ins for *{escape(partnership_name)}*, posted in its channel."),
            input_block(ids.F_DAYS, "Weekdays", {
                "type": "checkboxes", "options": day_options,
                "initial_options": [o for o in day_options if o["value"] in days]}),
            input_block(ids.F_TIME, "Local time", {
                "type": "timepicker", "initial_time": schedule.local_time if schedule else "09:30"}),
            input_block(ids.F_TIMEZONE, "Time zone", {"type": "plain_text_input", "initial_value": timezone},
                        hint="An IANA name such as Europe/Berlin; the check-in follows its daylight saving time."),
            questions_input("Questions (one per line)", questions),
            input_block(ids.F_WINDOW, "Response window", {
                "type": "static_select", "options": window_options,
                "initial_option": next(o for o in window_options if o["value"] == str(window))}),
            input_block(ids.F_REMINDER, "Reminder for people who have not answered", {
                "type": "static_select", "options": remind_options,
                "initial_option": next(o for o in remind_options if o["value"] == remind_value)}),
            input_block(ids.F_PARTICIPANT_MODE, "Who takes part", {
                "type": "radio_buttons", "options": mode_options,
                "initial_option": next(o for o in mode_options if o["value"] == mode.value)}),
            input_block(ids.F_PARTICIPANTS, "Chosen participants", people, optional=True,
                        hint="Used when only chosen people take part; people from the partner's side too."),
        ],
    }


def questions_input(label: str, questions: Sequence[Question]) -> Block:
    """The questions field of both forms: one per line, a kind prefix marking blocker and need questions."""
    return input_block(ids.F_QUESTIONS, label, {
        "type": "plain_text_input", "multiline": True, "initial_value": "\n".join(q.line for q in questions),
        "max_length": QUESTIONS_MAX * (QUESTION_MAX + 1 + KIND_PREFIX_MAX)}, hint=QUESTIONS_HINT)


KIND_PREFIX_MAX = max(len(p) + 1 for p in KIND_PREFIXES.values())
QUESTIONS_HINT = (f"Start a line with {KIND_PREFIXES[QuestionKind.BLOCKER]} for a question about blockers, or with "
                  f"{KIND_PREFIXES[QuestionKind.NEED]} for what is needed from the partner: the summary lists their "
                  "answers by kind, each with a Log as issue button. Other lines are plain questions.")


def questions_modal(*, partnership_id: int, partnership_name: str, questions: Sequence[Question]) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": ids.CHECKIN_QUESTIONS_VIEW,
        "title": plain("Check-in questions"),
        "submit": plain("Save"),
        "close": plain("Cancel"),
        "private_metadata": json.dumps({"partnership_id": partnership_id}),
        "blocks": [
            section(f"The questions of *{escape(partnership_name)}*'s check-ins, one per line "
                    f"(at most {QUESTIONS_MAX}, {QUESTION_MAX} characters each)."),
            questions_input("Questions", questions),
        ],
    }


# -- overview and history -----------------------------------------------------------------------------------
def overview_blocks(
    partnership_name: str, schedule: CheckinSchedule | None, *, next_due: datetime | None,
    participants: Sequence[str], away: dict[str, date],
) -> list[Block]:
    if schedule is None:
        return [section(
            f"*{escape(partnership_name)}* has no check-in schedule yet. Set one up with "
            "`/partner checkin setup`, or quickly with `/partner checkin schedule mon,wed,fri 09:30`. "
            "`/partner checkin now` runs one right away."
        )]
    status = ":double_vertical_bar: paused (`/partner checkin resume` restarts it)" if schedule.paused else \
        ":large_green_circle: active"
    nxt = local_time(next_due, schedule.timezone) if next_due and not schedule.paused else "none planned"
    mode = "all members" if schedule.participant_mode == ParticipantMode.ALL else "chosen people"
    questions = question_lines(questions_of(schedule))
    blocks = [
        header(f"Check-ins: {partnership_name}"),
        section(
            f"*When:* {schedule_line(schedule)}\n*Status:* {status}\n*Next:* {nxt}\n"
            f"*Response window:* {window_text(schedule.window_minutes)}, {reminder_text(schedule)}"
        ),
        section(truncate(f"*Taking part ({mode}, {len(participants)}):* {_people(participants)}", 2900)),
        section(f"*Questions*\n{questions}"),
    ]
    if away:
        lines = [f"{mention(u)} until {until.isoformat()}" for u, until in away.items()]
        blocks.append(section(truncate("*Away:* " + ", ".join(lines), 2900)))
    blocks.append(context("`/partner checkin now|pause|resume|skip|questions|history` · owners change the schedule."))
    return blocks


def history_blocks(partnership_name: str, rounds: Sequence[tuple[CheckinRound, Tally]]) -> list[Block]:
    if not rounds:
        return [section(f"*{escape(partnership_name)}* has had no check-ins yet.")]
    lines = []
    for r, t in rounds:
        rate = f"{round(t.rate * 100)}%" if t.rate is not None else "n/a"
        state = "open" if r.status == "open" else "closed"
        extras = []
        if t.away:
            extras.append(f"{len(t.away)} away")
        if t.flagged:
            extras.append(f"{len(t.flagged)} blocker/need" + ("s" if len(t.flagged) != 1 else ""))
        if r.delayed:
            extras.append("posted late")
        tail = f" · {', '.join(extras)}" if extras else ""
        lines.append(f"• *{_day(r.local_date)}* ({state}): {len(t.answered)} of {t.expected} answered ({rate}){tail}")
    return chunked_sections(f"*Recent check-ins of {escape(partnership_name)}*", lines)


# Why Slack refused a reminder, for the summary (by error code).
UNDELIVERED_WHY = {
    "user_disabled": ": deactivated",
    "user_not_found": ": no such person",
    "user_not_visible": ": not visible to Partnerbot",
    "cannot_dm_bot": ": a bot",
}


def failure_notice(what: str, partnership_name: str, channel_id: str | None, error: str, advice: str) -> str:
    return (
        f":warning: Partnerbot could not {what} for *{escape(partnership_name)}* in {channel_link(channel_id)} "
        f"(Slack said `{error}`). {advice}"
    )
