"""Block Kit for partnerships: the creation modal, the charter, info, list, close and App Home."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from blocks import ids
from blocks.kit import (
    SECTION_MAX,
    VIEW_BLOCKS_MAX,
    Block,
    cap_blocks,
    chunked_sections,
    context,
    divider,
    header,
    input_block,
    plain,
    section,
)
from blocks.text import channel_link, escape, escape_within, local_time, mention
from models.partnership import (
    GOALS_MAX,
    NAME_MAX,
    PARTNER_ORG_MAX,
    AuditEvent,
    InvitationStatus,
    Member,
    PartnerInvitation,
    Partnership,
    PartnershipStatus,
    Role,
    Side,
)

ROLE_LABELS = {
    Role.OWNER: "Owners",
    Role.SPONSOR: "Sponsors",
    Role.MEMBER: "Members",
    Role.PARTNER_CONTACT: "Partner contacts",
}
STATUS_LABELS = {
    PartnershipStatus.CREATING: ":hourglass: being set up",
    PartnershipStatus.ACTIVE: ":large_green_circle: active",
    PartnershipStatus.CLOSED: ":white_circle: closed",
}


def new_partnership_modal(
    *, default_timezone: str, creator: str, name: str = "", response_url: str | None = None
) -> dict[str, Any]:
    """The `/partner new` modal. `private_metadata` carries where to report back to."""
    name_input: dict[str, Any] = {"type": "plain_text_input", "max_length": NAME_MAX}
    if name:
        name_input["initial_value"] = name[:NAME_MAX]
    return {
        "type": "modal",
        "callback_id": ids.NEW_PARTNERSHIP_VIEW,
        "title": plain("New partnership"),
        "submit": plain("Create"),
        "close": plain("Cancel"),
        "private_metadata": json.dumps({"response_url": response_url}) if response_url else "",
        "blocks": [
            input_block(ids.F_NAME, "Partnership name", name_input, hint="The channel will be #partner-<name>."),
            input_block(ids.F_PARTNER_ORG, "Partner organization",
                   {"type": "plain_text_input", "max_length": PARTNER_ORG_MAX}, optional=True),
            input_block(ids.F_OWNERS, "Owners", {"type": "multi_users_select", "initial_users": [creator]},
                   hint="Owners manage the partnership and receive its alerts."),
            input_block(ids.F_MEMBERS, "Our members", {"type": "multi_users_select"}, optional=True),
            input_block(ids.F_EMAILS, "Partner contacts' emails",
                   {"type": "plain_text_input", "multiline": True,
                    "placeholder": plain("ana@partner.com, li@partner.com")},
                   optional=True, hint="Each gets a Slack Connect invitation to the channel."),
            input_block(ids.F_GOALS, "Goals",
                   {"type": "plain_text_input", "multiline": True, "max_length": GOALS_MAX}, optional=True),
            input_block(ids.F_TIMEZONE, "Time zone",
                   {"type": "plain_text_input", "initial_value": default_timezone},
                   hint="An IANA name such as Europe/Berlin; check-ins run in this zone."),
            input_block(ids.F_PRIVATE, "Channel",
                   {"type": "checkboxes",
                    "options": [{"text": plain("Private channel"), "value": "private"}]},
                   optional=True),
        ],
    }


def _people(members: Sequence[Member], role: Role) -> str:
    people = [m for m in members if m.role == role]
    if not people:
        return "_none yet_"
    return ", ".join(mention(m.user_id) + (" (partner)" if m.side == Side.PARTNER else "") for m in people)


def _goals_text(goals: str) -> str:
    return escape_within(goals, SECTION_MAX - 100) if goals else "_No goals written yet._"


def _reason_text(reason: str | None) -> str:
    """A close reason, escaped (REASON_MAX characters fit whole in a section of their own)."""
    return escape_within(reason, SECTION_MAX - 100)


def charter_blocks(p: Partnership, members: Sequence[Member]) -> list[Block]:
    """The pinned charter: partner, goals, people by role, how to use the bot."""
    org = f" with *{escape(p.partner_org)}*" if p.partner_org else ""
    return [
        header(f"Partnership charter: {p.name}"),
        section(f"Welcome to the shared channel of the *{escape(p.name)}* partnership{org}."),
        section(f"*Goals*\n{_goals_text(p.goals)}"),
        section(
            "\n".join(f"*{ROLE_LABELS[role]}*: {_people(members, role)}" for role in ROLE_LABELS)
        ),
        context(
            f"Time zone: {escape(p.timezone)} · Use `/partner info` for details, `/partner add @person role` "
            "to add people, `/partner help` for every command."
        ),
    ]


def channel_gone_notice(p: Partnership, error: str) -> str:
    gone = "was archived" if error == "is_archived" else "was deleted, or Partnerbot can no longer see it"
    return (
        f":file_cabinet: {channel_link(p.channel_id)}, the channel of *{escape(p.name)}*, {gone}, so Partnerbot "
        "stopped its scheduled check-ins. Unarchive the channel to start them again from the next scheduled "
        "time; to end the partnership, an owner runs `/partner close` in its channel."
    )


def charter_text(p: Partnership) -> str:
    return f"Partnership charter: {escape(p.name)}"


AUDIT_LABELS = {
    "created": "created the partnership",
    "member_added": "added {user} as {role}",
    "role_changed": "made {user} {role}",
    "member_removed": "removed {user}",
    "partner_invited": "invited {email} through Slack Connect ({status})",
    "closed": "closed the partnership",
    "checkin_scheduled": "set the check-ins to {weekdays} at {local_time} ({timezone})",
    "checkin_paused": "paused the check-ins",
    "checkin_resumed": "resumed the check-ins",
    "checkin_skipped": "skipped a check-in",
    "checkin_questions_changed": "changed the check-in questions",
    "checkin_started": "started a check-in",
    "pulse_scheduled": "set the partnership pulse to {cadence}",
    "pulse_paused": "paused the partnership pulse",
    "pulse_resumed": "resumed the partnership pulse",
    "pulse_started": "started a partnership pulse round",
    "channel_archived": "archived the channel: scheduled check-ins stopped",
    "channel_gone": "found the channel archived or gone (`{error}`): scheduled check-ins stopped",
    "channel_unarchived": "unarchived the channel: scheduled check-ins start again",
    "milestone_added": "added milestone #{milestone} “{title}” due {due}",
    "milestone_edited": "edited milestone #{milestone}",
    "milestone_rescheduled": "moved milestone #{milestone} from {old} to {new} (first planned for {original})",
    "milestone_cancelled": "cancelled milestone #{milestone}",
    "milestone_done": "marked milestone #{milestone} done ({against_plan})",
    "milestone_reopened": "reopened milestone #{milestone}",
    "values_changed": "changed the values kudos are tagged with",
    "joined": "joined the channel and was recorded as {role} on {side} side",
    "joined_by_invitation": "accepted the Slack Connect invitation to {email} and joined as {role} on {side} side",
    "left": "left the channel: still recorded, but not asked in new check-ins or polls",
    "rejoined": "joined the channel again",
    "poll_created": "started poll #{number}",
    "poll_closed": "closed poll #{number} early",
    "issue_logged": "logged issue #{issue}",
    "issue_acknowledged": "acknowledged issue #{issue}",
    "issue_assigned": "assigned issue #{issue}",
    "issue_marked_waiting_on_the_partner": "marked issue #{issue} waiting on the partner",
    "issue_resumed": "resumed issue #{issue}",
    "issue_resolved": "resolved issue #{issue}",
    "issue_reopened": "reopened issue #{issue}",
    "issue_escalated": "escalated issue #{issue} to the sponsors",
    "issue_sla_warn": "reminded the owners of issue #{issue} of its SLA",
    "issue_sla_breach": "flagged issue #{issue} past its SLA target",
    "issue_sla_escalate": "escalated issue #{issue} to the sponsors (twice its SLA target)",
    "issue_sla_changed": "changed the issue SLA targets",
}
SIDE_NAMES = {Side.OURS.value: "our", Side.PARTNER.value: "the partner's"}
# How the two sides are named everywhere: as a heading ("Partner's side: 3 of 3 answered") and in a sentence
# ("recorded on the partner's side"). Keyed by the value, so a Side or its stored string both find it.
SIDE_HEADINGS = {Side.OURS.value: "Our side", Side.PARTNER.value: "Partner's side"}
RECENT_CHANGES = 8
INVITATIONS_SHOWN = 20
EMAIL_SHOWN = 300  # characters of an escaped address in /partner info


def side_words(side: Side | str) -> str:
    """"our side" / "the partner's side", in a sentence."""
    return f"{SIDE_NAMES[Side(side).value]} side"


def audit_line(event: AuditEvent, zone: str) -> str:
    """One line of the audit trail: when, who, what."""
    detail = {k: escape(str(v)) for k, v in (event.detail or {}).items()}
    if "user" in detail:
        detail["user"] = mention(str(event.detail["user"]))
    if "role" in detail:
        detail["role"] = detail["role"].replace("_", " ")
    if "side" in detail:
        detail["side"] = SIDE_NAMES.get(str(event.detail["side"]), detail["side"])
    try:
        what = AUDIT_LABELS.get(event.action, event.action).format(**detail)
    except (KeyError, IndexError):
        what = event.action.replace("_", " ")
    return f"• {local_time(event.at, zone, '%d %b %H:%M')} · {mention(event.actor_id)} {what}"


def _person(m: Member) -> str:
    return mention(m.user_id) + (" _(left the channel)_" if m.left_at is not None else "")


def _invitation_state(inv: PartnerInvitation, zone: str) -> str:
    if inv.status == InvitationStatus.ACCEPTED:
        who = f" by {mention(inv.accepted_by)}" if inv.accepted_by else ""
        when = f" on {local_time(inv.accepted_at, zone, '%d %b %Y')}" if inv.accepted_at else ""
        return f":white_check_mark: accepted{who}{when}"
    if inv.status == InvitationStatus.SENT:
        return "invitation sent"
    return f"failed: `{escape(inv.error)}`"


def info_blocks(
    p: Partnership, members: Sequence[Member], invitations: Sequence[PartnerInvitation],
    audit: Sequence[AuditEvent] = (),
) -> list[Block]:
    blocks: list[Block] = [header(f"{p.name}"), section(
        f"*Status:* {STATUS_LABELS[p.status]}\n"
        f"*Partner:* {escape(p.partner_org) or '_not set_'}\n"
        f"*Channel:* {channel_link(p.channel_id)}\n*Time zone:* {escape(p.timezone)}"
    ), section(f"*Goals*\n{_goals_text(p.goals)}")]
    for side, title in ((Side.OURS, SIDE_HEADINGS[Side.OURS]), (Side.PARTNER, SIDE_HEADINGS[Side.PARTNER])):
        on_side = [m for m in members if m.side == side]
        lines = [f"*{ROLE_LABELS[r]}*: " + ", ".join(_person(m) for m in on_side if m.role == r)
                 for r in ROLE_LABELS if any(m.role == r for m in on_side)]
        blocks.append(section(f"*{title}*\n" + ("\n".join(lines) if lines else "_nobody yet_")))
    if invitations:
        lines = []
        for inv in invitations[:INVITATIONS_SHOWN]:
            lines.append(f"• {escape_within(inv.email, EMAIL_SHOWN)}: {_invitation_state(inv, p.timezone)}")
        if len(invitations) > INVITATIONS_SHOWN:
            lines.append(f"…and {len(invitations) - INVITATIONS_SHOWN} more")
        blocks += chunked_sections("*Partner invitations*", lines)
    if audit:
        recent = [audit_line(e, p.timezone) for e in list(audit)[-RECENT_CHANGES:]]
        blocks += chunked_sections("*Recent changes*", recent)
    if p.status == PartnershipStatus.CLOSED:
        reason = f": {_reason_text(p.close_reason)}" if p.close_reason else ""
        blocks.append(context(f"Closed by {mention(p.closed_by or '')}{reason}"))
    return blocks


def partnership_lines(items: Sequence[tuple[Partnership, Role]]) -> list[str]:
    lines = []
    for p, role in items:
        where = channel_link(p.channel_id, "_no channel_")
        lines.append(f"• *{escape(p.name)}* {where} · {STATUS_LABELS[p.status]} · you: {role.value.replace('_', ' ')}")
    return lines


def list_blocks(items: Sequence[tuple[Partnership, Role]]) -> list[Block]:
    if not items:
        return [section("You are not in any partnership yet. Start one with `/partner new <name>`.")]
    blocks = chunked_sections("*Your partnerships*", partnership_lines(items))
    return cap_blocks(blocks, note="…and more.")


def close_confirm_blocks(p: Partnership, reason: str, confirmation_id: int) -> list[Block]:
    """The question `/partner close` asks; its button carries only the id of the request kept on the server."""
    question = [section(
        f"Close *{escape(p.name)}*? This posts a closing summary, archives {channel_link(p.channel_id)} "
        "and marks the partnership closed. Its history stays in Partnerbot."
    )]
    if reason:
        question.append(section(f"*Reason:* {_reason_text(reason)}"))
    return [
        *question,
        {
            "type": "actions",
            "elements": [
                {"type": "button", "action_id": ids.CLOSE_CONFIRM, "style": "danger", "value": str(confirmation_id),
                 "text": plain("Close partnership"),
                 "confirm": {"title": plain("Close the partnership?"),
                             "text": plain("The channel will be archived."),
                             "confirm": plain("Close it"), "deny": plain("Keep it")}},
                {"type": "button", "action_id": ids.CLOSE_CANCEL, "text": plain("Cancel"), "value": "cancel"},
            ],
        },
    ]


def closing_summary_blocks(p: Partnership, members: Sequence[Member], actor: str) -> list[Block]:
    reason = f"\n*Reason:* {_reason_text(p.close_reason)}" if p.close_reason else ""
    owners = _people(members, Role.OWNER)
    return [
        header(f"Partnership closed: {p.name}"),
        section(f"{mention(actor)} closed this partnership.{reason}"),  # a whole REASON_MAX fits
        section(
            f"*Owners:* {owners}\n*People involved:* {len(members)}\nThank you all for the work together. "
            "This channel is now archived; its history stays readable."
        ),
    ]


def home_view(items: Sequence[tuple[Partnership, Role]]) -> dict[str, Any]:
    blocks: list[Block] = [
        header("Partnerbot"),
        section("Your partnerships, their channels and their status."),
        {"type": "actions", "elements": [
            {"type": "button", "action_id": ids.NEW_PARTNERSHIP_BUTTON, "style": "primary",
             "text": plain("New partnership"), "value": "new"},
        ]},
        divider(),
    ]
    if not items:
        blocks.append(section("You are not in any partnership yet. Press *New partnership* to start one."))
    else:
        for line in partnership_lines(items)[:90]:
            blocks.append(section(line))
        if len(items) > 90:
            blocks.append(context(f"…and {len(items) - 90} more: use `/partner list`."))
    return {"type": "home", "blocks": blocks[:VIEW_BLOCKS_MAX]}
