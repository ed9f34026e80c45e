"""Block Kit for milestones and recognition: the list with its buttons, the add/edit, done and reschedule
forms, reminders, the overdue note, celebrations, kudos, the wins report and the monthly recap.
Every title, note and reason is user text: escaped wherever it is shown; people only as `<@id>`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

from blocks import ids
from blocks.kit import (
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
from blocks.text import escape, escape_within, mention, truncate
from models.milestone import (
    DONE_MEANS_MAX,
    DONE_NOTE_MAX,
    TITLE_MAX,
    Milestone,
    Wins,
)
from models.partnership import Side

LIST_OPEN_MAX = 20  # open milestones shown with their buttons (2 blocks each) in one message
LIST_DONE_MAX = 5


def day(d: date) -> str:
    """A due date as people read it: "Fri 20 Mar"."""
    return d.strftime("%a %d %b")


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def against_plan(due: date, done_on: date) -> str:
    """How a milestone went against its plan: "3 days early", "on the day", "5 days late"."""
    delta = (done_on - due).days
    if delta == 0:
        return "on the day"
    return f"{plural(abs(delta), 'day')} {'early' if delta < 0 else 'late'}"


def people(users: Sequence[str]) -> str:
    return ", ".join(mention(u) for u in users) if users else "_nobody_"


def side_label(side: Side | str, partner_org: str) -> str:
    """A side's heading, the partner's by its organization's name when known."""
    if Side(side) == Side.PARTNER:
        return escape(partner_org) or SIDE_HEADINGS[Side.PARTNER]
    return SIDE_HEADINGS[Side.OURS]


def ref(m: Milestone) -> str:
    """`#3 *Title*`: how a milestone is named in messages."""
    return f"#{m.number} *{escape(m.title)}*"


def pct(share: float | None) -> str:
    return "n/a" if share is None else f"{round(share * 100)}%"


# -- notes in the channel ----------------------------------------------------------------------------------
def added_text(m: Milestone, actor: str) -> str:
    return (f":dart: New milestone {ref(m)} due {day(m.due_date)}, owners {people(m.owners)} "
            f"(added by {mention(actor)}).")


def rescheduled_text(m: Milestone, old: date, actor: str) -> str:
    first = f" (first planned for {day(m.original_due_date)})" if m.original_due_date not in (old, m.due_date) else ""
    return (f":spiral_calendar_pad: {mention(actor)} rescheduled milestone {ref(m)} from {day(old)} to "
            f"{day(m.due_date)}{first}.")


def cancelled_text(m: Milestone, actor: str) -> str:
    return f":heavy_multiplication_x: {mention(actor)} cancelled milestone {ref(m)} (due {day(m.due_date)})."


def due_phrase(due: date, today: date) -> str:
    """"it is due Fri 20 Mar", or when that has passed "it was due Tue 10 Mar, 41 days ago"."""
    late = (today - due).days
    return f"it was due {day(due)}, {plural(late, 'day')} ago" if late > 0 else f"it is due {day(due)}"


def reopened_text(m: Milestone, actor: str, today: date) -> str:
    return f":arrows_counterclockwise: {mention(actor)} reopened milestone {ref(m)}; {due_phrase(m.due_date, today)}."


def note_blocks(text: str) -> list[Block]:
    return [section(text)]


def _buttons(m: Milestone, *, edit: bool = True) -> Block:
    value = str(m.id)
    elements = [button("Mark done", ids.MILESTONE_DONE, value, style="primary"),
                button("Reschedule", ids.MILESTONE_RESCHEDULE, value)]
    if edit:
        cancel = button("Cancel", ids.MILESTONE_CANCEL, value, style="danger")
        cancel["confirm"] = {"title": plain("Cancel this milestone?"),
                             "text": plain(f"#{m.number} {truncate(m.title, 200)} will be cancelled; "
                                           "its reminders stop."),
                             "confirm": plain("Cancel it"), "deny": plain("Keep it")}
        elements += [button("Edit", ids.MILESTONE_EDIT, value), cancel]
    return actions(*elements, block_id=f"milestone_{m.id}")


def overdue_text(m: Milestone, late: int) -> str:
    return (f":warning: Milestone {ref(m)} was due {day(m.due_date)} and is still open "
            f"({plural(late, 'day')} late). Owners: {people(m.owners)}.")


def overdue_blocks(m: Milestone, late: int) -> list[Block]:
    return [section(overdue_text(m, late) + " Mark it done, or reschedule it."), _buttons(m, edit=False)]


# -- reminders (direct messages to a milestone's owners) ---------------------------------------------------
def reminder_text(partnership_name: str, m: Milestone, days: int) -> str:
    when = "tomorrow" if days == 1 else f"in {plural(days, 'day')}"
    return (f":alarm_clock: Milestone {ref(m)} of *{escape(partnership_name)}* is due {when}, "
            f"on {day(m.due_date)}.")


def due_reminder_blocks(partnership_name: str, m: Milestone, days: int) -> list[Block]:
    blocks = [section(reminder_text(partnership_name, m, days))]
    if m.done_means:
        blocks.append(context(f"Done means: {escape_within(m.done_means, 2900)}"))
    blocks.append(actions(button("Mark done", ids.MILESTONE_DONE, str(m.id), style="primary"),
                          block_id=f"milestone_{m.id}"))
    return blocks


# -- celebration ------------------------------------------------------------------------------------------
def celebration_text(partnership_name: str, m: Milestone) -> str:
    return f":tada: Milestone reached in {escape(partnership_name)}: #{m.number} {escape(m.title)}"


def celebration_blocks(partnership_name: str, m: Milestone, partner_org: str) -> list[Block]:
    assert m.done_on is not None
    by_side: dict[str, list[str]] = {}
    for c in m.contributors:
        by_side.setdefault(c.get("side", Side.OURS.value), []).append(c["user"])
    lines = [f"*{side_label(side, partner_org)}:* {people(users)}"
             for side, users in sorted(by_side.items(), key=lambda kv: kv[0] != Side.OURS.value)]
    blocks: list[Block] = [
        header(f"Milestone reached: {m.title}"),
        section(f":tada: {ref(m)} of *{escape(partnership_name)}* is done: "
                f"*{against_plan(m.due_date, m.done_on)}* (planned {day(m.due_date)}, done {day(m.done_on)})."),
    ]
    if lines:
        blocks += chunked_sections("*Made it happen:*", lines)
    if m.done_note:
        blocks.append(section(f":speech_balloon: {escape_within(m.done_note, 2900)}"))
    if m.done_by:
        blocks.append(context(f"Marked done by {mention(m.done_by)}."))
    return cap_blocks(blocks)


# -- kudos --------------------------------------------------------------------------------------------------
def kudos_text(giver: str, receivers: Sequence[str]) -> str:
    return f":clap: {mention(giver)} thanks {people(receivers)}"


def kudos_blocks(giver: str, receivers: Sequence[str], reason: str, value: str | None, cross_org: bool) -> list[Block]:
    tags = []
    if value:
        tags.append(f"#{escape(value)}")
    if cross_org:
        tags.append(":handshake: across organizations")
    blocks: list[Block] = [section(f"{kudos_text(giver, receivers)}\n:speech_balloon: {escape_within(reason, 2800)}")]
    if tags:
        blocks.append(context(" · ".join(tags)))
    return blocks


# -- the list ---------------------------------------------------------------------------------------------------
def milestone_list_blocks(
    partnership_name: str, *, upcoming: Sequence[Milestone], overdue: Sequence[Milestone], done: Sequence[Milestone],
    today: date, total_open: int,
) -> list[Block]:
    blocks: list[Block] = [header(f"Milestones: {partnership_name}")]
    shown = 0
    if not upcoming and not overdue and not done:
        blocks.append(section("No milestones yet. Add one with `/partner milestone add \"Title\" 2026-03-20 @owner`, "
                              "or `/partner milestone add` for the form."))
        return blocks
    for title, rows in (("*Overdue*", overdue), ("*Upcoming*", upcoming)):
        if not rows:
            continue
        blocks.append(section(title))
        for m in rows:
            if shown >= LIST_OPEN_MAX:
                break
            shown += 1
            delta = (m.due_date - today).days
            when = (f"{plural(-delta, 'day')} late" if delta < 0 else "due today" if delta == 0
                    else f"{plural(delta, 'day')} left")
            line = f"{ref(m)} · due {day(m.due_date)} · *{when}* · owners {people(m.owners)}"
            if m.original_due_date != m.due_date:
                line += f" · first planned for {day(m.original_due_date)}"
            blocks.append(section(line))
            blocks.append(_buttons(m))
    if total_open > shown:
        blocks.append(context(f"…and {total_open - shown} more open milestones."))
    if done:
        lines = []
        for m in done[:LIST_DONE_MAX]:
            assert m.done_on is not None
            lines.append(f":white_check_mark: {ref(m)} · planned {day(m.due_date)}, done {day(m.done_on)} "
                         f"({against_plan(m.due_date, m.done_on)})")
        blocks += chunked_sections("*Recently done*", lines)
    return cap_blocks(blocks)


# -- forms --------------------------------------------------------------------------------------------------------
def _meta(**data: Any) -> str:
    return json.dumps(data)


def milestone_modal(
    *, partnership_id: int, partnership_name: str, milestone: Milestone | None = None, today: date | None = None,
    response_url: str | None = None,
) -> dict[str, Any]:
    """Add a milestone (no `milestone`), or edit one (its due date changes through Reschedule)."""
    m = milestone
    title: dict[str, Any] = {"type": "plain_text_input", "max_length": TITLE_MAX}
    done_means: dict[str, Any] = {"type": "plain_text_input", "multiline": True, "max_length": DONE_MEANS_MAX}
    owners: dict[str, Any] = {"type": "multi_users_select"}
    yes = option("Celebrate it in the channel when it is done", "yes")
    celebrate: dict[str, Any] = {"type": "checkboxes", "options": [yes]}
    if m is None or m.celebrate:
        celebrate["initial_options"] = [yes]
    if m is not None:
        title["initial_value"] = m.title
        if m.done_means:
            done_means["initial_value"] = m.done_means
        if m.owners:
            owners["initial_users"] = list(m.owners)
    blocks: list[Block] = [
        section(f"{'Edit milestone #' + str(m.number) if m else 'A new milestone'} of *{escape(partnership_name)}*."),
        input_block(ids.F_TITLE, "Title", title),
        input_block(ids.F_DONE_MEANS, "What done means", done_means, optional=True),
    ]
    if m is None:
        due: dict[str, Any] = {"type": "datepicker"}
        if today is not None:
            due["initial_date"] = today.isoformat()
        blocks.append(input_block(ids.F_DUE, "Due date", due, hint="In the partnership's time zone; not in the past."))
    blocks += [
        input_block(ids.F_MILESTONE_OWNERS, "Owners", owners, optional=True,
                    hint="People recorded in the partnership, on either side. They get the reminders."),
        input_block(ids.F_CELEBRATE, "Celebrate", celebrate, optional=True),
    ]
    return {
        "type": "modal",
        "callback_id": ids.MILESTONE_EDIT_VIEW if m else ids.MILESTONE_ADD_VIEW,
        "title": plain("Edit milestone" if m else "New milestone"),
        "submit": plain("Save" if m else "Add"),
        "close": plain("Cancel"),
        "private_metadata": _meta(partnership_id=partnership_id, milestone_id=m.id if m else None,
                                  response_url=response_url),
        "blocks": blocks,
    }


def done_modal(partnership_name: str, m: Milestone, *, response_url: str | None = None) -> dict[str, Any]:
    contributors: dict[str, Any] = {"type": "multi_users_select"}
    if m.owners:
        contributors["initial_users"] = list(m.owners)
    return {
        "type": "modal",
        "callback_id": ids.MILESTONE_DONE_VIEW,
        "title": plain("Milestone done"),
        "submit": plain("Mark done"),
        "close": plain("Cancel"),
        "private_metadata": _meta(milestone_id=m.id, response_url=response_url),
        "blocks": [
            section(f"{ref(m)} of *{escape(partnership_name)}*, due {day(m.due_date)}."
                    + ("" if m.celebrate else "\nIt is recorded without a celebration in the channel.")),
            input_block(ids.F_CONTRIBUTORS, "Who made it happen", contributors,
                        hint="People of either side of the partnership."),
            input_block(ids.F_NOTE, "What was achieved", {"type": "plain_text_input", "max_length": DONE_NOTE_MAX},
                        optional=True),
        ],
    }


def reschedule_modal(partnership_name: str, m: Milestone, *, response_url: str | None = None) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": ids.MILESTONE_RESCHEDULE_VIEW,
        "title": plain("Reschedule"),
        "submit": plain("Reschedule"),
        "close": plain("Cancel"),
        "private_metadata": _meta(milestone_id=m.id, response_url=response_url),
        "blocks": [
            section(f"{ref(m)} of *{escape(partnership_name)}* is due {day(m.due_date)}."),
            input_block(ids.F_DUE, "New due date", {"type": "datepicker", "initial_date": m.due_date.isoformat()}),
        ],
    }


# -- wins ---------------------------------------------------------------------------------------------------
def _top(counts: dict[str, int], n: int = 10) -> str:
    ranked = sorted(counts.items(), key=lambda uc: (-uc[1], uc[0]))[:n]
    return ", ".join(f"{mention(u)} ({c})" for u, c in ranked) or "_none_"


def wins_blocks(partnership_name: str, w: Wins, window: str, partner_org: str) -> list[Block]:
    sides = [Side.OURS, Side.PARTNER]
    lines = [
        f"*Milestones reached:* {w.reached} ({pct(w.on_time_share)} on time)",
        f"*Kudos:* {w.kudos} ({pct(w.cross_share)} across organizations)",
        "*Kudos given by side:* " + ", ".join(f"{side_label(s, partner_org)} {w.given_by_side.get(s, 0)}"
                                              for s in sides),
        "*Kudos received by side:* " + ", ".join(f"{side_label(s, partner_org)} {w.received_by_side.get(s, 0)}"
                                                 for s in sides),
        f"*Given:* {_top(w.given)}",
        f"*Received:* {_top(w.received)}",
    ]
    return [header(f"Wins: {partnership_name}"), *chunked_sections(f"_{window}_", lines)]


def recap_text(partnership_name: str, month: str) -> str:
    return f"Wins of {escape(partnership_name)} in {month}"


def recap_blocks(partnership_name: str, w: Wins, month: str, partner_org: str) -> list[Block]:
    lines = [f"*Milestones reached:* {w.reached} ({pct(w.on_time_share)} on time)",
             f"*Kudos:* {w.kudos} ({pct(w.cross_share)} across organizations)"]
    for s in (Side.OURS, Side.PARTNER):
        top = w.most_thanked(s)
        if top:
            lines.append(f"*Most thanked, {side_label(s, partner_org)}:* "
                         + ", ".join(f"{mention(u)} ({c})" for u, c in top))
    return [header(f"{month} wins: {partnership_name}"), *chunked_sections("", lines)]
