"""Block Kit for polls: the poll message (voting buttons, live tally, final results), the new-poll and
answer forms, the open answers in the thread, the reminder, the list, and the creator's private results.

Times are Slack date tokens (`<!date^...>`), so every reader sees them in their own time zone."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from blocks import ids
from blocks.kit import (
    Block,
    actions,
    button,
    cap_blocks,
    chunked_sections,
    context,
    input_block,
    option,
    plain,
    section,
)
from blocks.partnerships import SIDE_HEADINGS
from blocks.text import escape, escape_within, mention, truncate
from models.partnership import Partnership
from models.poll import (
    ANONYMOUS_TALLY_MIN,
    POLL_ANSWER_MAX,
    POLL_OPTION_MAX,
    POLL_OPTIONS_MAX,
    POLL_QUESTION_MAX,
    Counted,
    Poll,
    PollAudience,
    PollKind,
    PollResults,
    PollStatus,
    ResultsMode,
)

BAR_WIDTH = 10
KIND_CHOICES = [(PollKind.SINGLE, "Single choice"), (PollKind.MULTIPLE, "Multiple choice"),
                (PollKind.RATING, "Rating, 1 to 5"), (PollKind.NPS, "NPS, 0 to 10"), (PollKind.TEXT, "Open text")]
RESULTS_CHOICES = [(ResultsMode.LIVE, "Live, while people vote"), (ResultsMode.AFTER_CLOSE, "Only after it closes")]
AUDIENCE_CHOICES = [(PollAudience.ALL, "Everyone in the partnership"), (PollAudience.OURS, "Our side"),
                    (PollAudience.PARTNER, "The partner's side"), (PollAudience.CHOSEN, "The people chosen below")]
REMIND_CHOICES = [("half", "Halfway to the close"), ("hour", "1 hour before it closes"), ("none", "No reminder")]


def when(moment: datetime, fmt: str = "{date_short_pretty} at {time}") -> str:
    """A time every reader sees in their own time zone (the fallback is UTC)."""
    return f"<!date^{int(moment.timestamp())}^{fmt}|{moment:%Y-%m-%d %H:%M} UTC>"


def bar(percent: int) -> str:
    filled = max(0, min(BAR_WIDTH, round(percent * BAR_WIDTH / 100)))
    return "█" * filled + "░" * (BAR_WIDTH - filled)


def audience_text(poll: Poll, p: Partnership) -> str:
    name = f"*{escape(p.name)}*"
    if poll.audience == PollAudience.OURS:
        return f"our side of {name}"
    if poll.audience == PollAudience.PARTNER:
        org = f" ({escape_within(p.partner_org, 120)})" if p.partner_org else ""
        return f"the partner's side{org} of {name}"
    if poll.audience == PollAudience.CHOSEN:
        shown = ", ".join(mention(u) for u in poll.chosen[:20])
        more = f" and {len(poll.chosen) - 20} more" if len(poll.chosen) > 20 else ""
        return f"the people chosen ({shown}{more})"
    return f"everyone in {name}"


def _kind_text(poll: Poll) -> str:
    if poll.kind == PollKind.MULTIPLE:
        return f"pick up to {poll.max_picks}" if poll.max_picks else "pick any number"
    return {PollKind.SINGLE: "pick one", PollKind.RATING: "rate 1 to 5", PollKind.NPS: "0 to 10",
            PollKind.TEXT: "open answer"}.get(poll.kind, "")


def poll_text(poll: Poll) -> str:
    """The notification text of the poll's message."""
    state = "closed" if poll.status == PollStatus.CLOSED else "open"
    return f"Poll #{poll.number} ({state}): {escape_within(poll.question, 600)}"


def result_lines(poll: Poll, counted: Counted) -> list[str]:
    """Counts, percentages and a bar per option; average and distribution for ratings; the NPS score."""
    if poll.kind == PollKind.TEXT:
        return []
    lines = []
    for i, label in enumerate(counted.labels):
        pct = counted.percent(i)
        shown = escape(truncate(label, POLL_OPTION_MAX)) if poll.kind.is_choice else label
        lines.append(f"`{bar(pct)}` {pct}% ({counted.counts[i]})  {shown}")
    if poll.kind == PollKind.RATING and counted.average is not None:
        lines.append(f"*Average:* {counted.average:.1f} / 5")
    if poll.kind == PollKind.NPS and counted.nps is not None:
        lines.append(f"*NPS:* {counted.nps:+d} ({counted.promoters} promoters 9-10, {counted.detractors} "
                     f"detractors 0-6, of {counted.respondents})")
    return lines


def _answered(n: int) -> str:
    return f"{n} answered" if n != 1 else "1 answered"


def _results_blocks(poll: Poll, res: PollResults, *, final: bool) -> list[Block]:
    n = res.total.respondents
    if poll.kind == PollKind.TEXT:
        if final and not n:
            return [context("Nobody answered.")]
        where = "in this message's thread" if final else "in this message's thread when the poll closes"
        names = ", without names." if poll.anonymous else "."
        return [context(f"{_answered(n)}. The answers are {where}{names}")]
    if not final and poll.results == ResultsMode.AFTER_CLOSE:
        return [context(f"{_answered(n)}. Results show when the poll closes.")]
    if not final and poll.anonymous and n < ANONYMOUS_TALLY_MIN:
        return [context(f"{_answered(n)}. This poll is anonymous: its tally shows once {ANONYMOUS_TALLY_MIN} "
                        "people have answered.")]
    blocks = chunked_sections(f"*{'Results' if final else 'So far'}* ({_answered(n)})", result_lines(poll, res.total))
    for side, counted in res.by_side.items():
        blocks += chunked_sections(f"*{SIDE_HEADINGS[side]}* ({_answered(counted.respondents)})",
                                   result_lines(poll, counted))
    if res.side_note:
        blocks.append(context(res.side_note))
    return blocks


def _closing_line(poll: Poll) -> str:
    if poll.status != PollStatus.CLOSED:
        return f"Closes {when(poll.closes_at)}"
    closed = poll.closed_at or poll.closes_at
    if poll.closed_by:
        return f"Closed early by {mention(poll.closed_by)}, {when(closed)}"
    if poll.closed_late:
        return (f"Closed late, {when(closed)}: it was due {when(poll.closes_at)}, when Partnerbot was not "
                "running")
    return f"Closed {when(closed)}"


def _header(poll: Poll, p: Partnership) -> list[Block]:
    anonymous = ":bust_in_silhouette: Anonymous" if poll.anonymous else ":busts_in_silhouette: Not anonymous: " \
        "votes are recorded with names"
    return [
        section(f":bar_chart: *Poll #{poll.number}*  {escape(poll.question)}"),
        context(f"Asked by {mention(poll.created_by)} · for {audience_text(poll, p)} · {_kind_text(poll)}"),
        context(f"{anonymous} · {_closing_line(poll)}"),
    ]


def _vote_buttons(poll: Poll) -> list[Block]:
    value = str(poll.id)
    if poll.kind == PollKind.TEXT:
        return [actions(button("Answer", ids.POLL_ANSWER, value, style="primary"),
                        button("Close poll", ids.POLL_CLOSE, value), _export_button(poll),
                        block_id=f"poll_{poll.id}_answer")]
    if poll.kind.is_choice:
        choices = [(truncate(label, POLL_OPTION_MAX), i) for i, label in enumerate(poll.options)]
    else:
        choices = [(str(v), v) for v in (range(1, 6) if poll.kind == PollKind.RATING else range(0, 11))]
    votes = actions(*(button(label or "-", f"{ids.POLL_VOTE}_{v}", f"{poll.id}:{v}") for label, v in choices),
                    block_id=f"poll_{poll.id}_vote")
    return [votes, actions(button("Close poll", ids.POLL_CLOSE, value), _export_button(poll),
                           block_id=f"poll_{poll.id}_close")]


def _export_button(poll: Poll) -> dict[str, Any]:
    """Everyone sees it; only the poll's creator and the partnership's owners get the file (the server checks)."""
    return button("Export CSV", ids.POLL_EXPORT, str(poll.id))


def poll_blocks(poll: Poll, p: Partnership, res: PollResults, *, now: datetime | None = None) -> list[Block]:
    """The poll's message: open with its buttons and the tally so far, or closed with its final results (and
    the Export CSV button)."""
    final = poll.status == PollStatus.CLOSED
    blocks = _header(poll, p) + _results_blocks(poll, res, final=final)
    if not final:
        blocks += _vote_buttons(poll)
    else:
        blocks.append(actions(_export_button(poll), block_id=f"poll_{poll.id}_export"))
    return cap_blocks(blocks)


def export_comment(poll: Poll, partnership_name: str, *, answers: int, respondents: int) -> str:
    """The private note that comes with a poll's CSV file."""
    state = "closed" if poll.status == PollStatus.CLOSED else "still open: later answers are not in it"
    who = ("Anonymous poll: the file names nobody." if poll.anonymous else
           "With each voter's name.")
    return (f"Poll #{poll.number} of *{escape(partnership_name)}*: {answers} answer row(s) from "
            f"{respondents} respondent(s); the poll is {state}. {who} Times are in UTC; text that a spreadsheet "
            "would run as a formula starts with an apostrophe.")


def results_dm_text(poll: Poll) -> str:
    return f"Results of your poll #{poll.number}: {escape_within(poll.question, 600)}"


def results_dm_blocks(poll: Poll, p: Partnership, res: PollResults) -> list[Block]:
    """The creator's private copy of the results when the poll's message is gone (channel archived, message
    deleted); open answers included."""
    why = ("its message in the channel is gone (the channel was archived or the message deleted)"
           if poll.message_ts else "it could not be posted in the channel before it closed")
    blocks = [section(f"Poll #{poll.number} of *{escape(p.name)}* closed, but {why}, so here are its results.")]
    blocks += _header(poll, p) + _results_blocks(poll, res, final=True)
    if poll.kind == PollKind.TEXT:
        blocks += _answer_sections(poll, res)
    return cap_blocks(blocks)


def _answer_sections(poll: Poll, res: PollResults) -> list[Block]:
    authors = res.total.authors if not poll.anonymous else []
    lines = [f"• {mention(by) + ': ' if by else ''}{escape_within(a, 2800)}"
             for a, by in itertools.zip_longest(res.total.answers, authors) if a is not None]
    return chunked_sections("", lines)


def answers_text(poll: Poll) -> str:
    return f"Answers to poll #{poll.number}"


def answers_blocks(poll: Poll, res: PollResults) -> list[Block]:
    """The open answers, in the poll's thread when it closes (no names when anonymous)."""
    names = "without names (anonymous)" if poll.anonymous else "in the order they came, with their authors"
    blocks = [section(f"*{len(res.total.answers)} answer(s) to poll #{poll.number}*, {names}:")]
    return cap_blocks(blocks + _answer_sections(poll, res),
                      note="…and more answers than one message can hold.")


def reminder_text(poll: Poll, partnership_name: str) -> str:
    return f"Poll #{poll.number} of {escape_within(partnership_name, 100)} is waiting for your answer"


def reminder_blocks(poll: Poll, partnership_name: str, link: str) -> list[Block]:
    link_button = {**button("Open the poll", ids.POLL_OPEN, str(poll.id), style="primary"), "url": link[:3000]}
    return [
        section(f":ballot_box_with_ballot: *{escape(partnership_name)}* asks: {escape(poll.question)}\n"
                f"You have not answered yet; it closes {when(poll.closes_at)}."),
        actions(link_button, block_id=f"poll_{poll.id}_remind"),
        context("One reminder per poll. `/partner away` pauses reminders while you are away."),
    ]


def recorded_text(poll: Poll, picks: Sequence[int], *, changed: bool, respondents: int, answer: str | None) -> str:
    """The voter's private confirmation of what is recorded for them now."""
    def label(v: int) -> str:
        return f"*{escape(poll.options[v])}*" if poll.kind.is_choice and v < len(poll.options) else f"*{v}*"

    if poll.kind == PollKind.TEXT:
        text = ":white_check_mark: Your answer is saved" + (" (it replaces your earlier one)." if changed else ".")
    elif not picks:
        text = ":white_check_mark: You dropped your pick; nothing is recorded for you now."
    elif poll.kind == PollKind.MULTIPLE:
        text = f":white_check_mark: Your picks now: {', '.join(label(v) for v in picks)}."
        if poll.max_picks:
            text += f" (at most {poll.max_picks})"
    elif changed:
        text = f":white_check_mark: Your vote is now {label(picks[0])}."
    else:
        text = f"You already voted {label(picks[0])}; nothing changed. Click another option to change your vote."
    if poll.anonymous:
        shows = ("its results show when it closes" if poll.results == ResultsMode.AFTER_CLOSE
                 else f"its tally shows once {ANONYMOUS_TALLY_MIN} people have answered" + (
                     f" ({respondents} so far)" if respondents < ANONYMOUS_TALLY_MIN else ""))
        text += f" This poll is anonymous: your vote is stored without your name, and {shows}."
    return text


def failure_notice(what: str, poll: Poll, partnership_name: str, error: str) -> str:
    return (f":warning: Partnerbot could not {what} (poll #{poll.number} of *{escape(partnership_name)}*: "
            f"`{escape(error)}`). If the channel was archived, unarchive it; otherwise tell your Slack admin the "
            "error code.")


def list_blocks(partnership_name: str, listed: Sequence[Any]) -> list[Block]:
    """`/partner poll list`: the open polls, then the last closed ones, with links."""
    def line(item: Any) -> str:
        poll: Poll = item.poll
        title = escape_within(poll.question, 150)
        shown = f"<{item.link}|#{poll.number}>" if item.link else f"#{poll.number}"
        state = (f"closes {when(poll.closes_at)}" if poll.status == PollStatus.OPEN
                 else f"closed {when(poll.closed_at or poll.closes_at, '{date_short_pretty}')}")
        return f"{shown} {title} · {_answered(item.respondents)} · {state}"

    open_ = [line(i) for i in listed if i.poll.status == PollStatus.OPEN]
    closed = [line(i) for i in listed if i.poll.status == PollStatus.CLOSED]
    blocks = chunked_sections(f"*Open polls of {escape(partnership_name)}*", open_ or ["_none_"])
    blocks += chunked_sections("*Last closed*", closed or ["_none_"])
    blocks.append(context('Start one with `/partner poll` (a form) or `/partner poll "Question?" "A" "B"`.'))
    return cap_blocks(blocks)


def poll_modal(
    *, partnership_id: int, partnership_name: str, timezone: str, response_url: str | None = None,
    question: str = "", options: Sequence[str] = (), anonymous: bool = False, closes: str | None = None,
) -> dict[str, Any]:
    """The new-poll form (prefilled from a quick command that could not be read whole)."""
    kinds = [option(label, k.value) for k, label in KIND_CHOICES]
    kind = PollKind.SINGLE.value if options or not question else PollKind.TEXT.value
    results = [option(label, r.value) for r, label in RESULTS_CHOICES]
    audiences = [option(label, a.value) for a, label in AUDIENCE_CHOICES]
    reminders = [option(label, value) for value, label in REMIND_CHOICES]
    anon_option = option("Anonymous: votes are stored without names", "anonymous")
    anon: dict[str, Any] = {"type": "checkboxes", "options": [anon_option]}
    if anonymous:
        anon["initial_options"] = [anon_option]
    question_el: dict[str, Any] = {"type": "plain_text_input", "max_length": POLL_QUESTION_MAX}
    if question:
        question_el["initial_value"] = question[:POLL_QUESTION_MAX]
    options_el: dict[str, Any] = {"type": "plain_text_input", "multiline": True,
                                  "max_length": POLL_OPTIONS_MAX * (POLL_OPTION_MAX + 1) * 2}
    if options:
        options_el["initial_value"] = "\n".join(options)[: POLL_OPTIONS_MAX * (POLL_OPTION_MAX + 1) * 2]
    return {
        "type": "modal",
        "callback_id": ids.POLL_VIEW,
        "title": plain("New poll"),
        "submit": plain("Post poll"),
        "close": plain("Cancel"),
        "private_metadata": json.dumps({"partnership_id": partnership_id, "response_url": response_url}),
        "blocks": [
            section(f"A poll in the channel of *{escape(partnership_name)}*; people answer with one click."),
            input_block(ids.F_POLL_QUESTION, "Question", question_el),
            input_block(ids.F_POLL_KIND, "Kind", {
                "type": "static_select", "options": kinds,
                "initial_option": next(o for o in kinds if o["value"] == kind)}),
            input_block(ids.F_POLL_OPTIONS, "Options, one per line", options_el, optional=True,
                        hint=f"Single and multiple choice: {2} to {POLL_OPTIONS_MAX} options, each up to "
                             f"{POLL_OPTION_MAX} characters. Leave empty for the other kinds."),
            input_block(ids.F_POLL_MAX_PICKS, "Multiple choice: most picks per person", {
                "type": "plain_text_input", "max_length": 2}, optional=True, hint="Empty: no limit."),
            input_block(ids.F_POLL_ANONYMOUS, "Anonymity", anon, optional=True),
            input_block(ids.F_POLL_RESULTS, "Results", {
                "type": "radio_buttons", "options": results, "initial_option": results[0]}),
            input_block(ids.F_POLL_CLOSES, "Closes", {
                "type": "plain_text_input", "initial_value": closes or "2 days", "max_length": 40},
                hint=f"A duration such as 2 hours or 3 days, or a date and time in {timezone} such as "
                     "2026-03-05 17:00 (at most 90 days ahead)."),
            input_block(ids.F_POLL_AUDIENCE, "Who may answer", {
                "type": "radio_buttons", "options": audiences, "initial_option": audiences[0]}),
            input_block(ids.F_POLL_CHOSEN, "Chosen people", {"type": "multi_users_select"}, optional=True),
            input_block(ids.F_POLL_REMINDER, "Reminder for people who have not answered", {
                "type": "static_select", "options": reminders, "initial_option": reminders[0]},
                hint="No reminder for a poll that closes within the hour, nor for people marked away."),
        ],
    }


def answer_modal(poll: Poll, *, current: str = "") -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "multiline": True, "max_length": POLL_ANSWER_MAX}
    if current:
        element["initial_value"] = current
    note = "Anonymous: your answer is shown without your name." if poll.anonymous else \
        "Your answer is shown with your name when the poll closes."
    return {
        "type": "modal",
        "callback_id": ids.POLL_ANSWER_VIEW,
        "title": plain(f"Poll #{poll.number}"[:24]),
        "submit": plain("Send"),
        "close": plain("Cancel"),
        "private_metadata": json.dumps({"poll": poll.id}),
        "blocks": [
            section(escape(poll.question)),
            input_block(ids.F_POLL_ANSWER, "Your answer", element),
            context(note),
        ],
    }
