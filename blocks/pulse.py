"""Block Kit for pulse surveys: the survey message and, once closed, its results; the open answers in its
thread; the reminder; the setup and survey forms; the overview. Times are shown in the schedule's time zone."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from blocks import ids
from blocks.kit import (
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
from blocks.partnerships import SIDE_HEADINGS
from blocks.text import channel_link, escape, escape_within, local_time, mention, truncate
from models.pulse import (
    DEFAULT_OPEN_DAYS,
    DEFAULT_PULSE_QUESTIONS,
    OPEN_ANSWER_MAX,
    OPEN_DAYS_MAX,
    OPEN_PREFIX,
    PULSE_QUESTION_MAX,
    PULSE_QUESTIONS_MAX,
    RATING_MAX,
    RATING_MIN,
    Audience,
    CadenceKind,
    PulseResults,
    PulseRound,
    PulseSchedule,
    QuestionKind,
)

WEEKDAY_NAMES = {"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday", "fri": "Friday",
                 "sat": "Saturday", "sun": "Sunday"}
NTH_NAMES = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}
AUDIENCE_NAMES = {Audience.BOTH: "both sides", Audience.OURS: "our side only",
                  Audience.PARTNER: "the partner's side only"}
RATING_LABELS = {1: "1 - poor", 2: "2", 3: "3 - fair", 4: "4", 5: "5 - excellent"}
TREND_WORDS = {"up": ":arrow_upper_right: up", "down": ":arrow_lower_right: down", "same": ":left_right_arrow: same"}
GAP_NOTE = ":warning: The two organizations see the partnership differently"
ACTIONS_BLOCK = "pulse_actions"
DELAY_NOTE_AFTER = timedelta(minutes=5)


def _time(moment: datetime, zone: str) -> str:
    return local_time(moment, zone, "%a %d %b %H:%M")


def _avg(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "n/a"


def cadence_line(s: PulseSchedule) -> str:
    day = WEEKDAY_NAMES.get(s.weekday, s.weekday)
    if s.cadence == CadenceKind.WEEKS:
        every = "every week" if s.every_weeks == 1 else f"every {s.every_weeks} weeks"
        when = f"{every} on {day}"
    else:
        when = f"monthly on the {NTH_NAMES.get(s.nth, str(s.nth))} {day}"
    return f"{when} at {s.local_time} ({escape(s.timezone)})"


def _days(n: int) -> str:
    return f"{n} day" + ("s" if n != 1 else "")


def _questions(questions: Sequence[dict[str, str]]) -> list[str]:
    return [f"{i}. {escape(q['text'])}" + (" _(in words)_" if q.get("kind") == QuestionKind.OPEN else "")
            for i, q in enumerate(questions, 1)]


def _anonymity(anonymous: bool) -> str:
    return (":lock: Anonymous: answers are stored without names, and nobody, owners included, can see who "
            "answered what." if anonymous else ":bust_in_silhouette: Not anonymous: the results list who answered.")


# -- the survey message and its results ----------------------------------------------------------------------
def survey_text(partnership_name: str) -> str:
    return f"Partnership pulse for {escape(partnership_name)}: press Take the survey to answer."


def survey_blocks(partnership_name: str, r: PulseRound, *, asked: int) -> list[Block]:
    ratings = sum(1 for q in r.questions if q.get("kind") != QuestionKind.OPEN)
    blocks: list[Block] = [
        header(f"Partnership pulse: {partnership_name}"),
        section(f"How is the partnership doing? {len(r.questions)} question(s), {ratings} rated from "
                f"{RATING_MIN} to {RATING_MAX}. Open until *{_time(r.closes_at, r.timezone)}*; answering again "
                f"replaces your answers.\n*Asked:* {AUDIENCE_NAMES[r.audience]} ({asked} people)"),
        actions(button("Take the survey", ids.PULSE_TAKE, r.key, style="primary"), block_id=ACTIONS_BLOCK),
        context(_anonymity(r.anonymous)),
    ]
    if not r.manual and r.opened_at - r.scheduled_for > DELAY_NOTE_AFTER:
        blocks.append(context(f":hourglass: Delayed: this round was due at {_time(r.scheduled_for, r.timezone)} and "
                              "is posted late because Partnerbot was not running then."))
    if r.manual and r.started_by:
        blocks.append(context(f"Started by {mention(r.started_by)} with `/partner pulse now`."))
    return blocks


def results_text(partnership_name: str, res: PulseResults) -> str:
    return f"Partnership pulse closed for {escape(partnership_name)}: {res.respondents} answered."


def participation_line(res: PulseResults) -> str:
    parts = [f"{SIDE_HEADINGS.get(side, side)}: {a} of {n} answered" for side, (a, n) in res.participation.items()]
    return "*Participation:* " + (" · ".join(parts) if parts else "nobody was asked")


def question_lines(res: PulseResults) -> list[Block]:
    blocks = []
    for q in res.questions:
        sm = q.summary
        b = sm.breakdown
        line = f"*{escape(q.text)}*\n*{_avg(b.overall)}* / {RATING_MAX} overall ({b.respondents} answer(s))"
        if sm.trend is not None:
            line += f" · {TREND_WORDS[sm.trend.value]} from {_avg(sm.previous)}"
        if len(b.sides) > 1:  # both sides were asked
            if b.sides_shown:
                per = [f"{SIDE_HEADINGS.get(side, side)} {_avg(f.average)}" for side, f in b.sides.items()
                       if f.respondents]
                if per:
                    line += "\n" + " · ".join(per)
            else:
                line += (f"\n_Per side: hidden until each side has at least {res.min_per_side} "
                         "answers._")
        if sm.gap is not None and sm.gap.flagged:
            line += f"\n{GAP_NOTE} (a gap of {abs(sm.gap.difference):.1f})."
        line += "\nRatings given: `" + " · ".join(f"{RATING_MIN + i}: {n}" for i, n in enumerate(sm.distribution)) + "`"
        blocks.append(section(line))
    return blocks


def results_blocks(partnership_name: str, r: PulseRound, res: PulseResults) -> list[Block]:
    closed = r.closed_at or r.closes_at
    blocks: list[Block] = [
        header(f"Partnership pulse: {partnership_name} (results)"),
        section(f"Closed {_time(closed, r.timezone)} · asked {AUDIENCE_NAMES[r.audience]}\n"
                f"{participation_line(res)}"),
    ]
    if res.respondents == 0:
        blocks.append(section("Nobody answered this round."))
    blocks += question_lines(res)
    if any(q.summary.gap is not None and q.summary.gap.flagged for q in res.questions):
        blocks.append(section(f"{GAP_NOTE} on the questions marked above: worth talking about together."))
    if not r.anonymous and res.answered_by:
        blocks.append(section(truncate("*Answered:* " + ", ".join(mention(u) for u in res.answered_by), 2900)))
    tail = "Open answers are in this message's thread, without names." if any(a for _, a in res.open_answers) \
        else "No open answers this round."
    blocks.append(context(f"{tail} {'Anonymous round.' if r.anonymous else ''}".strip()))
    return cap_blocks(blocks)


def open_answers_text(partnership_name: str) -> str:
    return f"Open answers of the {escape(partnership_name)} pulse"


def open_answers_blocks(open_answers: Sequence[tuple[str, Sequence[str]]]) -> list[Block]:
    blocks: list[Block] = []
    for question, answers in open_answers:
        if not answers:
            continue
        lines = [f"• {escape_within(a, SECTION_MAX - 300)}" for a in answers]
        blocks += chunked_sections(f"*{escape(question)}* ({len(answers)} answer(s), without names)", lines)
    return cap_blocks(blocks or [section("No open answers.")], note="…more answers than one message can hold.")


def reminder_text_for(partnership_name: str) -> str:
    return f"Reminder: the {escape(partnership_name)} partnership pulse is waiting for your answers."


def reminder_blocks(partnership_name: str, r: PulseRound) -> list[Block]:
    return [
        section(f":wave: Reminder: the *{escape(partnership_name)}* partnership pulse in {channel_link(r.channel_id)} "
                f"closes *{_time(r.closes_at, r.timezone)}*. It takes a minute"
                + (" and is anonymous." if r.anonymous else ".")),
        actions(button("Take the survey", ids.PULSE_TAKE, r.key, style="primary"), block_id=ACTIONS_BLOCK),
        context("Away? `/partner away until YYYY-MM-DD` pauses reminders for you."),
    ]


# -- forms ------------------------------------------------------------------------------------------------------
def rating_field(index: int) -> str:
    return f"pq{index}"


def survey_modal(partnership_name: str, r: PulseRound, *, ratings: Sequence[int | None],
                 answers: Sequence[str]) -> dict[str, Any]:
    blocks: list[Block] = [section(
        f"*{escape(partnership_name)}* · open until {_time(r.closes_at, r.timezone)}\n"
        f"Rate from {RATING_MIN} (poor) to {RATING_MAX} (excellent); skip what you cannot judge."),
        context(_anonymity(r.anonymous))]
    rating_options = [option(label, str(n)) for n, label in RATING_LABELS.items()]
    for i, q in enumerate(r.questions):
        label = truncate(q["text"], 2000)
        if q.get("kind") == QuestionKind.OPEN:
            element: dict[str, Any] = {"type": "plain_text_input", "multiline": True, "max_length": OPEN_ANSWER_MAX}
            if i < len(answers) and answers[i]:
                element["initial_value"] = answers[i][:OPEN_ANSWER_MAX]
        else:
            element = {"type": "radio_buttons", "options": rating_options}
            if i < len(ratings) and ratings[i] is not None:
                element["initial_option"] = rating_options[int(ratings[i] or 1) - RATING_MIN]
        blocks.append(input_block(rating_field(i), label, element, optional=True))
    answered = any(x is not None for x in ratings) or any(answers)
    return {
        "type": "modal",
        "callback_id": ids.PULSE_SURVEY_VIEW,
        "title": plain("Partnership pulse"),
        "submit": plain("Replace my answers" if answered else "Send"),
        "close": plain("Cancel"),
        "private_metadata": json.dumps({"round": r.key}),
        "blocks": blocks,
    }


def setup_modal(
    *, partnership_id: int, partnership_name: str, timezone: str, schedule: PulseSchedule | None,
    response_url: str | None = None,
) -> dict[str, Any]:
    s = schedule
    cadence_options = [option("Every N weeks", CadenceKind.WEEKS.value), option("Monthly", CadenceKind.MONTHLY.value)]
    nth_options = [option(f"The {name} weekday of the month", str(n)) for n, name in NTH_NAMES.items()]
    day_options = [option(name, key) for key, name in WEEKDAY_NAMES.items()]
    days_options = [option(_days(n), str(n)) for n in range(1, OPEN_DAYS_MAX + 1)]
    anon_options = [option("Yes: no names are stored with answers", "yes"), option("No: list who answered", "no")]
    audience_options = [option("Both sides", Audience.BOTH.value), option("Our side", Audience.OURS.value),
                        option("The partner's side", Audience.PARTNER.value)]

    def pick(options: list[dict[str, Any]], value: str) -> dict[str, Any]:
        return next((o for o in options if o["value"] == value), options[0])

    questions = s.questions if s else DEFAULT_PULSE_QUESTIONS
    lines = "\n".join(f"{OPEN_PREFIX} {q['text']}" if q.get("kind") == QuestionKind.OPEN else q["text"]
                      for q in questions)
    return {
        "type": "modal",
        "callback_id": ids.PULSE_SETUP_VIEW,
        "title": plain("Partnership pulse"),
        "submit": plain("Save"),
        "close": plain("Cancel"),
        "private_metadata": json.dumps({"partnership_id": partnership_id, "response_url": response_url}),
        "blocks": [
            section(f"A recurring health survey for *{escape(partnership_name)}*, posted in its channel."),
            input_block(ids.F_PULSE_CADENCE, "How often", {
                "type": "static_select", "options": cadence_options,
                "initial_option": pick(cadence_options, s.cadence.value if s else CadenceKind.MONTHLY.value)}),
            input_block(ids.F_PULSE_EVERY, "Every how many weeks", {
                "type": "plain_text_input", "initial_value": str(s.every_weeks if s else 4), "max_length": 3},
                hint="For every N weeks: 1 to 12. Counted from the first such weekday from today."),
            input_block(ids.F_PULSE_NTH, "Which week of the month", {
                "type": "static_select", "options": nth_options,
                "initial_option": pick(nth_options, str(s.nth if s else 1))}, hint="For monthly."),
            input_block(ids.F_PULSE_WEEKDAY, "Weekday", {
                "type": "static_select", "options": day_options,
                "initial_option": pick(day_options, s.weekday if s else "tue")}),
            input_block(ids.F_TIME, "Local time", {
                "type": "timepicker", "initial_time": s.local_time if s else "10:00"}),
            input_block(ids.F_TIMEZONE, "Time zone", {"type": "plain_text_input", "initial_value": timezone},
                        hint="An IANA name such as Europe/Berlin; rounds follow its daylight saving time."),
            input_block(ids.F_PULSE_OPEN_DAYS, "Each round stays open", {
                "type": "static_select", "options": days_options,
                "initial_option": pick(days_options, str(s.open_days if s else DEFAULT_OPEN_DAYS))}),
            input_block(ids.F_PULSE_ANONYMOUS, "Anonymous", {
                "type": "radio_buttons", "options": anon_options,
                "initial_option": pick(anon_options, "no" if s and not s.anonymous else "yes")}),
            input_block(ids.F_PULSE_AUDIENCE, "Who is asked", {
                "type": "radio_buttons", "options": audience_options,
                "initial_option": pick(audience_options, s.audience.value if s else Audience.BOTH.value)}),
            input_block(ids.F_QUESTIONS, "Questions (one per line)", {
                "type": "plain_text_input", "multiline": True, "initial_value": lines,
                "max_length": 2 * PULSE_QUESTIONS_MAX * (PULSE_QUESTION_MAX + len(OPEN_PREFIX) + 2)},
                hint=f"Rated 1 to 5, except lines starting with '{OPEN_PREFIX}', answered in words. At most "
                     f"{PULSE_QUESTIONS_MAX} questions of {PULSE_QUESTION_MAX} characters."),
        ],
    }


# -- overview ---------------------------------------------------------------------------------------------------
def overview_blocks(
    partnership_name: str, schedule: PulseSchedule | None, *, next_due: datetime | None,
    last: tuple[PulseRound, PulseResults] | None, current: PulseRound | None = None,
) -> list[Block]:
    blocks: list[Block] = [header(f"Partnership pulse: {partnership_name}")]
    if schedule is None:
        blocks.append(section(f"*{escape(partnership_name)}* has no pulse survey yet. An owner sets one up with "
                              "`/partner pulse setup`, or runs one round right away with `/partner pulse now`."))
    else:
        status = ":double_vertical_bar: paused (`/partner pulse resume` restarts it)" if schedule.paused else \
            ":large_green_circle: active"
        nxt = local_time(next_due, schedule.timezone) if next_due and not schedule.paused else "none planned"
        blocks.append(section(
            f"*When:* {cadence_line(schedule)}\n*Status:* {status}\n*Next round:* {nxt}\n"
            f"*Each round:* open {_days(schedule.open_days)}, one reminder before it closes, asks "
            f"{AUDIENCE_NAMES[schedule.audience]}, {'anonymous' if schedule.anonymous else 'not anonymous'}"))
        blocks += chunked_sections("*Questions*", _questions(schedule.questions))
    if current is not None:
        until = _time(current.closes_at, current.timezone)
        blocks.append(section(f":hourglass_flowing_sand: A round is open until {until}; its *Take the survey* "
                              f"button is in {channel_link(current.channel_id)}."))
    if last is not None:
        r, res = last
        closed = r.closed_at or r.closes_at
        blocks.append(section(f"*Last round* (closed {_time(closed, r.timezone)})\n{participation_line(res)}"))
        blocks += question_lines(res)
    else:
        blocks.append(section("No round has closed yet."))
    blocks.append(context("`/partner pulse setup|now|pause|resume` (owners)."))
    return cap_blocks(blocks)
