"""Block Kit for the issue log: the card (posted in the channel, updated in place), the forms, the list, the
figures, and the texts of the thread notes and direct messages. Pure: data in, dicts out; user text escaped."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from blocks import ids
from blocks.kit import (
    MESSAGE_BLOCKS_MAX,
    Block,
    actions,
    button,
    chunked_sections,
    context,
    header,
    input_block,
    option,
    plain,
    section,
)
from blocks.text import escape, escape_within, mention, truncate
from models.issue import (
    ESCALATION_NOTE_MAX,
    ISSUE_DESCRIPTION_MAX,
    ISSUE_TITLE_MAX,
    RESOLUTION_MAX,
    Issue,
    IssueEvent,
    IssueStatus,
)

# By severity (services.sla.Severity's values): blocks/ imports no services, so the service passes them in.
SEVERITY_ICON = {"critical": ":red_circle:", "high": ":large_orange_circle:", "normal": ":large_yellow_circle:",
                 "low": ":white_circle:"}
STATUS_LABEL = {IssueStatus.OPEN: "open", IssueStatus.ACKNOWLEDGED: "acknowledged",
                IssueStatus.WAITING: "waiting on partner", IssueStatus.RESOLVED: "resolved"}
CLOCK_VERB = {"ack": "acknowledged", "resolve": "resolved"}
HISTORY_MAX = 30  # the private view of an issue shows its last this many changes


@dataclass(frozen=True)
class ClockView:
    """One SLA clock as the card shows it."""

    name: str  # "ack" or "resolve"
    target: str  # "4 h"
    due_at: datetime | None  # while running
    left: str  # "2 h 10 min left" / "3 h late"
    late: bool
    running: bool
    paused: bool
    met: bool | None  # stopped: within target?


def when(moment: datetime, fmt: str = "{date_short_pretty} {time}") -> str:
    """A moment in the reader's own time zone (Slack's date formatting), with a UTC fallback."""
    return f"<!date^{int(moment.timestamp())}^{fmt}|{moment:%Y-%m-%d %H:%M} UTC>"


def ago(moment: datetime) -> str:
    return f"<!date^{int(moment.timestamp())}^{{ago}}|{moment:%Y-%m-%d %H:%M} UTC>"


def day(d: date) -> str:
    return f"{d:%a} {d.day} {d:%b %Y}"


def ref(i: Issue) -> str:
    """`#7 *Title*`, escaped."""
    return f"#{i.number} *{escape(i.title)}*"


def owners_text(i: Issue) -> str:
    ours = mention(i.owner_ours) if i.owner_ours else "nobody yet"
    partner = mention(i.owner_partner) if i.owner_partner else "nobody yet"
    return f"ours {ours} · partner {partner}"


def clock_line(c: ClockView) -> str:
    label = "Acknowledge" if c.name == "ack" else "Resolve"
    if c.met is not None:
        within = "within" if c.met else "after"
        return f"*{label}:* {CLOCK_VERB[c.name]} {within} its target ({c.target})"
    if c.paused:
        return f"*{label}:* paused while waiting on the partner · {c.left}"
    if c.running and c.due_at is not None:
        late = " :rotating_light:" if c.late else ""
        return f"*{label} by* {when(c.due_at)} · {c.left}{late}"
    return f"*{label}:* target {c.target}"


def card_text(i: Issue) -> str:
    """The card's message text (Slack's fallback and notification text): the title escaped like everywhere."""
    return f"Issue #{i.number}: {escape(truncate(i.title, 100))} ({i.severity}, {STATUS_LABEL[i.status]})"


def card_blocks(
    i: Issue, partnership: str, clocks: Sequence[ClockView], *, now: datetime, buttons: bool = True,
) -> list[Block]:
    """The issue's card: number, title, severity, status, reporter, owners per side, age, the SLA clocks, and the
    buttons that fit its status (every click is checked again on the server)."""
    blocks: list[Block] = [
        header(f"#{i.number} {i.title}"),
        section(f"{SEVERITY_ICON.get(i.severity, '')} *{i.severity}* · *{STATUS_LABEL[i.status]}* · reported by "
                f"{mention(i.reporter)} {ago(i.created_at)}\n*Owners:* {owners_text(i)}"
                + (f"\n*Due:* {day(i.due_date)}" if i.due_date else "")),
    ]
    if i.description:
        blocks.append(section(escape_within(i.description, 2900)))
    blocks.append(section("\n".join(clock_line(c) for c in clocks)))
    if i.status == IssueStatus.RESOLVED and i.resolution:
        blocks.append(section(f"*Resolution:* {escape_within(i.resolution, 2800)}"))
    if buttons:
        blocks.append(actions(*card_buttons(i), block_id=f"issue_{i.id}"))
    notes = [f"In *{escape(partnership)}*"]
    if i.source_link:
        notes.append(f"<{i.source_link}|the message it came from>")
    notes.append(f"as of {when(now, '{time}')}; discuss it in the thread")
    blocks.append(context(" · ".join(notes)))
    return blocks


def card_buttons(i: Issue) -> list[dict[str, Any]]:
    value = str(i.id)
    if i.status == IssueStatus.RESOLVED:
        return [button("Reopen", ids.ISSUE_REOPEN, value)]
    out = []
    if i.status == IssueStatus.OPEN:
        out.append(button("Acknowledge", ids.ISSUE_ACK, value, style="primary"))
    out.append(button("Assign", ids.ISSUE_ASSIGN, value))
    out.append(button("Edit", ids.ISSUE_EDIT, value))
    if i.status == IssueStatus.WAITING:
        out.append(button("Resume", ids.ISSUE_RESUME, value))
    else:
        out.append(button("Waiting on partner", ids.ISSUE_WAIT, value))
    out.append(button("Resolve", ids.ISSUE_RESOLVE, value))
    out.append(button("Escalate", ids.ISSUE_ESCALATE, value, style="danger"))
    return out


def history_lines(events: Sequence[IssueEvent], zone_fmt: str = "{date_short_pretty} {time}") -> list[str]:
    lines = []
    for e in events[-HISTORY_MAX:]:
        extra = ""
        if e.detail.get("note"):
            extra = f": {escape(truncate(str(e.detail['note']), 200))}"
        elif isinstance(e.detail.get("changes"), dict):
            extra = f": {changes_text(e.detail['changes'])}"
        lines.append(f"• {when(e.at, zone_fmt)} {mention(e.actor)} {e.action.replace('_', ' ')}{extra}")
    return lines


def detail_blocks(
    i: Issue, partnership: str, clocks: Sequence[ClockView], events: Sequence[IssueEvent], *, now: datetime,
) -> list[Block]:
    """`/partner issue 7`: the card, privately, with its history."""
    blocks = card_blocks(i, partnership, clocks, now=now)
    lines = history_lines(events)
    if lines:
        blocks += chunked_sections("*History*", lines)
    return blocks[:MESSAGE_BLOCKS_MAX]


# -- thread notes and direct messages ------------------------------------------------------------------------------
def note_text(actor: str, what: str, i: Issue, extra: str = "") -> str:
    """One line in the card's thread: "<@U1> acknowledged #7"."""
    return f"{mention(actor)} {what} #{i.number}" + (f": {extra}" if extra else "")


def _due(iso: str | None) -> str:
    return day(date.fromisoformat(iso)) if iso else "none"


def changes_text(changes: dict[str, Any]) -> str:
    """What an edit changed, in one line, from {field: [old, new]} (the history's record): "severity normal →
    high, due date Thu 12 Mar 2026"; titles escaped."""
    parts = []
    for name, (old, new) in changes.items():
        if name == "title":
            parts.append(f"title “{escape(truncate(str(old), 60))}” → “{escape(truncate(str(new), 60))}”")
        elif name == "description":
            parts.append("the description")
        elif name == "severity":
            parts.append(f"severity {old} → {new}")
        elif name == "due_date":
            if old is None:
                parts.append(f"due date {_due(new)}")
            elif new is None:
                parts.append(f"due date removed (was {_due(old)})")
            else:
                parts.append(f"due date {_due(old)} → {_due(new)}")
    return ", ".join(parts)


def link_text(link: str | None) -> str:
    return f" <{link}|Open the card>" if link else ""


def warn_text(i: Issue, partnership: str, clock: str, left: str, link: str | None) -> str:
    """The reminder at 80 % of a target (never sent once the target has passed: the breach says it then)."""
    verb = "acknowledge" if clock == "ack" else "resolve"
    return (f":hourglass_flowing_sand: {ref(i)} in *{escape(partnership)}*: {left} to {verb} it "
            f"within its target.{link_text(link)}")


def breach_text(i: Issue, clock: str, target: str) -> str:
    return f"#{i.number} was not {CLOCK_VERB[clock]} within {target}"


def breach_dm(i: Issue, partnership: str, clock: str, target: str, link: str | None) -> str:
    return (f":rotating_light: {breach_text(i, clock, target)} ({escape(i.title)}, *{escape(partnership)}*)."
            f"{link_text(link)}")


def escalation_dm(i: Issue, partnership: str, why: str, link: str | None) -> str:
    return f":sos: Escalation in *{escape(partnership)}*: {ref(i)} ({i.severity}): {why}{link_text(link)}"


def due_text(i: Issue, partnership: str, overdue: bool, link: str | None) -> str:
    assert i.due_date is not None
    if overdue:
        return (f":warning: {ref(i)} in *{escape(partnership)}* was due {day(i.due_date)} and is still "
                f"{STATUS_LABEL[i.status]}.{link_text(link)}")
    return (f":spiral_calendar_pad: {ref(i)} in *{escape(partnership)}* is due tomorrow, {day(i.due_date)}."
            f"{link_text(link)}")


# -- the list and the figures ------------------------------------------------------------------------------------
def list_line(i: Issue, sla: str, link: str | None) -> str:
    title = f"<{link}|{escape(truncate(i.title, 80))}>" if link else escape(truncate(i.title, 80))
    return (f"{SEVERITY_ICON.get(i.severity, '')} *#{i.number}* {title} · {STATUS_LABEL[i.status]} · "
            f"{owners_text(i)} · {sla}")


LIST_SHOWN = MESSAGE_BLOCKS_MAX - 2  # the list's lines in one message (with its heading and the "…and N more")


def list_blocks(partnership: str, label: str, lines: Sequence[str], total: int) -> list[Block]:
    """The compact list: at most LIST_SHOWN lines; over Slack's block limit it says how many more there are."""
    if not lines:
        return [section(f"*{escape(partnership)}* has no {label} issues. Log one with `/partner issue &lt;title&gt;`.")]
    blocks: list[Block] = [section(f"*Issues of {escape(partnership)}* ({label}, {total}): most severe first, "
                                   "then oldest")]
    room = LIST_SHOWN
    blocks += [section(line) for line in lines[:room]]
    if total > room:
        blocks.append(context(f"…and {total - room} more. `/partner issue &lt;number&gt;` shows one."))
    return blocks


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{round(value * 100)} %"


@dataclass(frozen=True)
class CountsView:
    """The issues as they stand now, whatever their age (`/partner issues stats`)."""

    unresolved: int
    total: int
    unresolved_by_severity: Sequence[tuple[str, int]]
    by_status: Sequence[tuple[str, int]]


@dataclass(frozen=True)
class FiguresView:
    """One window of `/partner issues stats`, formatted by the service: the issues logged in it."""

    days: int
    counted: int
    by_severity: Sequence[tuple[str, int]]
    mean_to_acknowledge: str  # "n/a" when nothing to count
    mean_to_resolve: str
    acknowledged_in_time: float | None
    resolved_in_time: float | None


def stats_blocks(partnership: str, now: CountsView, windows: Sequence[FiguresView]) -> list[Block]:
    """The current counts first (every issue, whatever its age), then one section per window."""
    sev = ", ".join(f"{name} {n}" for name, n in now.unresolved_by_severity)
    status = ", ".join(f"{STATUS_LABEL[IssueStatus(k)]} {v}" for k, v in now.by_status)
    blocks: list[Block] = [
        section(f"*Issue figures of {escape(partnership)}*"),
        section(f"*Now* ({now.total} issues in all, {now.unresolved} not resolved)\n"
                f"Not resolved, by severity: {sev}\nBy status: {status}"),
    ]
    for f in windows:
        logged = ", ".join(f"{name} {n}" for name, n in f.by_severity)
        blocks.append(section(
            f"*Last {f.days} days* ({f.counted} issues logged: {logged})\n"
            f"Mean time to acknowledge: {f.mean_to_acknowledge} · to resolve: {f.mean_to_resolve}\n"
            f"Within target: acknowledged {_share(f.acknowledged_in_time)} · resolved {_share(f.resolved_in_time)}"
            " (a clock still running past its target counts as missed)"))
    return blocks


def sla_text(partnership: str, targets: Sequence[tuple[str, str, str]], hours: str | None,
             day: str | None = None) -> str:
    """`targets`: (severity, acknowledge within, resolve within), most urgent first; `hours`: the business hours
    the clocks count ("Mon-Fri 09:00-17:00" style), None: every hour; `day`: a working day's length ("8 h")."""
    lines = [f"• *{sev}*: acknowledge within {ack}, resolve within {res}" for sev, ack, res in targets]
    counted = f"business hours only ({hours})" if hours else "every hour of every day"
    days = (f"\nA day in these targets is a working day ({day}) and a week the working days of a week, as in Jira "
            "Service Management." if hours and day else "")
    return f"*SLA targets of {escape(partnership)}* (the clocks count {counted}):\n" + "\n".join(lines) + days


# -- forms ---------------------------------------------------------------------------------------------------------
def _modal(callback_id: str, title: str, submit: str, blocks: list[Block], meta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "modal", "callback_id": callback_id, "title": plain(title), "submit": plain(submit),
            "close": plain("Cancel"), "blocks": blocks, "private_metadata": json.dumps(meta)}


def _text_input(block_id: str, label: str, *, initial: str = "", multiline: bool = False, max_length: int,
                optional: bool = False, hint: str = "") -> Block:
    element: dict[str, Any] = {"type": "plain_text_input", "multiline": multiline, "max_length": max_length}
    if initial:
        element["initial_value"] = initial[:max_length]
    return input_block(block_id, label, element, optional=optional, hint=hint)


def issue_modal(
    *, partnership: str, meta: dict[str, Any], severities: Sequence[str], title: str = "", description: str = "",
    severity: str = "normal", reporter: str | None = None, cut_from: int | None = None, linked: bool = False,
) -> dict[str, Any]:
    """The form that logs an issue (also prefilled from a message or a check-in answer; `cut_from`: the whole
    length of a text the description holds only the start of, said in its hint; `linked`: the issue will link
    to the message it came from)."""
    cut = ""
    if cut_from:
        cut = f" The text is {cut_from:,} characters long: only its start fits here (it ends with “…”)" + (
            "; the issue keeps the link to the whole message." if linked else ".")
    blocks: list[Block] = [
        section(f"Log an issue in *{escape(partnership)}*"
                + (f", reported by {mention(reporter)}" if reporter else "") + "."),
        *_issue_inputs(title, description, severity, severities, cut),
        input_block(ids.F_ISSUE_OWNER_OURS, "Owner on our side", {"type": "users_select"}, optional=True),
    ]
    blocks.append(input_block(ids.F_ISSUE_OWNER_PARTNER, "Owner on the partner's side", {"type": "users_select"},
                              optional=True, hint="Someone recorded on the partner's side."))
    blocks.append(input_block(ids.F_ISSUE_DUE, "Due date", {"type": "datepicker"}, optional=True))
    return _modal(ids.ISSUE_VIEW, "Log an issue", "Log it", blocks, meta)


def _issue_inputs(title: str, description: str, severity: str, severities: Sequence[str],
                  cut: str = "") -> list[Block]:
    """Title, description and severity, as the forms that log and edit an issue ask for them (the text inputs take
    more than the limits, so that a longer text is refused with its length rather than cut by Slack)."""
    return [
        _text_input(ids.F_ISSUE_TITLE, "Title", initial=title, max_length=ISSUE_TITLE_MAX + 50,
                    hint=f"Up to {ISSUE_TITLE_MAX} characters."),
        _text_input(ids.F_ISSUE_DESCRIPTION, "Description", initial=description, multiline=True,
                    max_length=ISSUE_DESCRIPTION_MAX + 500, optional=True,
                    hint=f"Up to {ISSUE_DESCRIPTION_MAX:,} characters.{cut}"),
        input_block(ids.F_ISSUE_SEVERITY, "Severity", {"type": "static_select",
                                                       "options": [option(s, s) for s in severities],
                                                       "initial_option": option(severity, severity)}),
    ]


def edit_modal(i: Issue, meta: dict[str, Any], severities: Sequence[str]) -> dict[str, Any]:
    """The Edit form: title, description, severity and due date as they are now (a due date is removed with the
    checkbox under it: Slack's date picker cannot be emptied)."""
    due: dict[str, Any] = {"type": "datepicker"}
    if i.due_date:
        due["initial_date"] = i.due_date.isoformat()
    blocks: list[Block] = [
        section(f"Edit {ref(i)}. A new severity takes its SLA targets from now on; the time its clocks used so far "
                "still counts."),
        *_issue_inputs(i.title, i.description, i.severity, severities),
        input_block(ids.F_ISSUE_DUE, "Due date", due, optional=True,
                    hint="In the partnership's time zone: today or later."),
    ]
    if i.due_date:
        blocks.append(input_block(ids.F_ISSUE_DUE_CLEAR, "No due date", {
            "type": "checkboxes", "options": [option(f"Remove the due date ({day(i.due_date)})", "clear")]},
            optional=True))
    return _modal(ids.ISSUE_EDIT_VIEW, "Edit the issue", "Save", blocks, meta)


def assign_modal(i: Issue, meta: dict[str, Any]) -> dict[str, Any]:
    blocks: list[Block] = [section(f"Owners of {ref(i)}")]
    for block_id, label, current in ((ids.F_ISSUE_OWNER_OURS, "Owner on our side", i.owner_ours),
                                     (ids.F_ISSUE_OWNER_PARTNER, "Owner on the partner's side", i.owner_partner)):
        element: dict[str, Any] = {"type": "users_select"}
        if current:
            element["initial_user"] = current
        blocks.append(input_block(block_id, label, element, optional=True))
    return _modal(ids.ISSUE_ASSIGN_VIEW, "Assign the issue", "Save", blocks, meta)


def resolve_modal(i: Issue, meta: dict[str, Any]) -> dict[str, Any]:
    blocks = [section(f"Resolve {ref(i)}"),
              _text_input(ids.F_ISSUE_NOTE, "Resolution", multiline=True, max_length=RESOLUTION_MAX,
                          hint="What was done; it is posted in the card's thread.")]
    return _modal(ids.ISSUE_RESOLVE_VIEW, "Resolve the issue", "Resolve", blocks, meta)


def escalate_modal(i: Issue, meta: dict[str, Any]) -> dict[str, Any]:
    blocks = [section(f"Escalate {ref(i)}: its sponsors on both sides get a direct message now (on a side "
                      "without a sponsor, its owners or partner contacts)."),
              _text_input(ids.F_ISSUE_NOTE, "Note for the sponsors", multiline=True, max_length=ESCALATION_NOTE_MAX,
                          optional=True)]
    return _modal(ids.ISSUE_ESCALATE_VIEW, "Escalate the issue", "Escalate", blocks, meta)


def sla_modal(partnership: str, targets: Sequence[tuple[str, str, str]], business_hours: bool, days: str, start: str,
              end: str, meta: dict[str, Any]) -> dict[str, Any]:
    """`targets`: (severity, acknowledge within, resolve within) as the inputs start."""
    blocks: list[Block] = [section(f"SLA targets of *{escape(partnership)}*: durations such as `90m`, `4h`, `1 day`, "
                                   "`2 days 4 hours`. With business hours counted, a day is one working day (as "
                                   "long as the opening hours: 8 h for 09:00\u201317:00) and a week the working "
                                   "days of a week; otherwise a day is 24 h.")]
    for sev, ack, res in targets:
        blocks.append(_text_input(f"{ids.F_SLA_ACK}_{sev}", f"{sev.capitalize()}: acknowledge within", initial=ack,
                                  max_length=40))
        blocks.append(_text_input(f"{ids.F_SLA_RESOLVE}_{sev}", f"{sev.capitalize()}: resolve within", initial=res,
                                  max_length=40))
    hours_option = option("Count business hours only", "yes")
    checkbox: dict[str, Any] = {"type": "checkboxes", "options": [hours_option]}
    if business_hours:
        checkbox["initial_options"] = [hours_option]
    blocks.append(input_block(ids.F_SLA_BUSINESS, "Business hours", checkbox, optional=True))
    blocks.append(_text_input(ids.F_SLA_DAYS, "Working days", initial=days, max_length=40, hint="e.g. mon-fri"))
    blocks.append(_text_input(ids.F_SLA_START, "Opens at", initial=start, max_length=5, hint="HH:MM"))
    blocks.append(_text_input(ids.F_SLA_END, "Closes at", initial=end, max_length=5, hint="HH:MM"))
    return _modal(ids.ISSUE_SLA_VIEW, "SLA targets", "Save", blocks, meta)
