"""Listeners for milestones and recognition: /partner milestone add|done|reopen|reschedule|cancel,
/partner milestones, /partner kudos, /partner values, /partner wins; the list's and reminders' buttons
(Mark done, Reschedule, Edit, Cancel) and the add/edit, done and reschedule forms. Every button and form
is checked again on the server (partnership owners and the milestone's owners)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from slack_bolt import App

from blocks import ids
from blocks import milestones as mblocks
from blocks.text import escape
from handlers.commands import COMMAND, CommandCall, CommandRouter, Usage
from handlers.common import (
    Reply,
    echo,
    guarded,
    plain_text,
    under_inputs,
    user_id_from_mention,
    view_metadata,
    view_values,
)
from models.milestone import MilestoneStatus
from services.confirmations import button_id
from services.container import Services
from services.errors import Invalid
from services.inputs import DATE_FORM, MilestoneInput, parse_date, split_quoted, validate
from services.milestones import parse_milestone_command

_LEADING_MENTION = re.compile(r"^(<@[UW][A-Z0-9]+(?:\|[^>]*)?>)\s*")

# MilestoneInput field (and service field names) -> the modal input that shows its error.
_FIELDS = {"title": ids.F_TITLE, "done_means": ids.F_DONE_MEANS, "due_date": ids.F_DUE,
           "owners": ids.F_MILESTONE_OWNERS, "contributors": ids.F_CONTRIBUTORS, "note": ids.F_NOTE}
_USAGE = (
    Usage('milestone add "<title>" <YYYY-MM-DD> [@owner …]', "add a milestone at once (owners); alone: a form",
          f'{COMMAND} milestone add "Pilot live" 2026-03-20 @ana'),
    Usage("milestone done <number or title>", "mark a milestone done and say who made it happen",
          f"{COMMAND} milestone done 3"),
    Usage("milestone reschedule <number> <YYYY-MM-DD>", "move a milestone's due date",
          f"{COMMAND} milestone reschedule 3 2026-04-02"),
    Usage("milestone cancel <number>", "cancel a milestone", f"{COMMAND} milestone cancel 3"),
    Usage("milestone reopen <number>", "reopen a done milestone", f"{COMMAND} milestone reopen 3"),
)


def parse_milestone_view(view: dict[str, Any], *, due: Any = None) -> MilestoneInput:
    v = view_values(view)
    try:
        return validate(
            MilestoneInput,
            title=v.get(ids.F_TITLE, {}).get("value") or "",
            done_means=v.get(ids.F_DONE_MEANS, {}).get("value") or "",
            due_date=due if due is not None else v.get(ids.F_DUE, {}).get("selected_date") or "",
            owners=v.get(ids.F_MILESTONE_OWNERS, {}).get("selected_users") or [],
            celebrate=any(o.get("value") == "yes" for o in v.get(ids.F_CELEBRATE, {}).get("selected_options") or []),
        )
    except Invalid as exc:
        raise under_inputs(exc, _FIELDS) from None


def register(app: App, services: Services, router: CommandRouter) -> None:
    svc = services.milestones
    slack = services.slack

    def where(call: CommandCall) -> dict[str, str]:
        return {"channel_id": call.channel_id, "actor": call.user_id}

    def open_done(trigger_id: str, milestone_id: int, actor: str, response_url: str | None) -> None:
        p, m = svc.open_milestone(milestone_id=milestone_id, actor=actor, what="mark it done")
        slack.open_view(trigger_id, mblocks.done_modal(p.name, m, response_url=response_url))

    # -- /partner milestone … ---------------------------------------------------------------------------------
    @router.add("milestone", usage=_USAGE[0].usage, summary=_USAGE[0].summary, example=_USAGE[0].example,
                more=_USAGE[1:])
    def _milestone(call: CommandCall) -> None:
        action, _, rest = call.args.partition(" ")
        action = action.lower()
        if action == "add" and not rest.strip():
            p, today = svc.prepare_add(**where(call))
            slack.open_view(call.trigger_id, mblocks.milestone_modal(
                partnership_id=p.id or 0, partnership_name=p.name, today=today, response_url=call.response_url))
        elif action == "add":
            p, _ = svc.prepare_add(**where(call))  # who may, before what they typed
            fields = parse_milestone_command(split_quoted(rest), user_id_from_mention, plain_text)
            inp = validate(MilestoneInput, **fields)
            call.reply.ack()
            call.reply(svc.add(partnership_id=p.id or 0, actor=call.user_id, inp=inp).text())
        elif action == "done":
            milestone_id = svc.find(ref=plain_text(rest), **where(call))
            open_done(call.trigger_id, milestone_id, call.user_id, call.response_url)
        elif action in ("reopen", "cancel"):
            status = MilestoneStatus.DONE if action == "reopen" else MilestoneStatus.OPEN
            milestone_id = svc.find(ref=plain_text(rest), status=status, **where(call))
            call.reply.ack()
            run = svc.reopen if action == "reopen" else svc.cancel
            call.reply(run(milestone_id=milestone_id, actor=call.user_id).text())
        elif action == "reschedule":
            parts = plain_text(rest).split()
            if len(parts) != 2:
                raise Invalid(f"Usage: `{COMMAND} milestone reschedule <number> <YYYY-MM-DD>` ({DATE_FORM}).")
            try:
                due = parse_date(parts[1])
            except ValueError as exc:
                raise Invalid(f"{escape(str(exc))}.") from None
            milestone_id = svc.find(ref=parts[0], **where(call))
            call.reply.ack()
            call.reply(svc.reschedule(milestone_id=milestone_id, actor=call.user_id, due=due).text())
        else:
            forms = ", ".join(f"`{u.usage}`" for u in _USAGE)
            raise Invalid(f"`{echo(action, 30)}` is not a milestone command. Use one of: {forms}.")

    @router.add("milestones", usage="milestones", summary="upcoming, overdue and recently done milestones",
                example=f"{COMMAND} milestones")
    def _milestones(call: CommandCall) -> None:
        ml = svc.overview(**where(call))
        call.reply(f"Milestones of {escape(ml.partnership.name)}", mblocks.milestone_list_blocks(
            ml.partnership.name, upcoming=ml.upcoming, overdue=ml.overdue, done=ml.done, today=ml.today,
            total_open=len(ml.upcoming) + len(ml.overdue)))

    @router.add("kudos", usage="kudos @person [@person …] <why> [#value]",
                summary="thank people of the partnership in its channel", example=f"{COMMAND} kudos @pat for the "
                "fast API keys #delivery")
    def _kudos(call: CommandCall) -> None:
        rest, receivers = call.args.strip(), []
        while (m := _LEADING_MENTION.match(rest)) is not None and (user := user_id_from_mention(m.group(1))):
            receivers.append(user)
            rest = rest[m.end():].lstrip()
        reason = plain_text(rest)
        call.reply.ack()
        call.reply(svc.kudos(receivers=receivers, reason=reason, request_key=f"cmd:{call.trigger_id}",
                             **where(call)).text())

    @router.add("values", usage="values [#value …]", summary="the values kudos can be tagged with; owners set them",
                example=f"{COMMAND} values #trust #delivery #speed")
    def _values_cmd(call: CommandCall) -> None:
        raw = plain_text(call.args)
        if not raw:
            p, values = svc.values(**where(call))
            call.reply(f"Kudos in *{escape(p.name)}* can be tagged with " + " ".join(f"`#{v}`" for v in values)
                       + f". Owners change them with `{COMMAND} values #one #two` (`{COMMAND} values default` puts "
                       "the defaults back).")
            return
        call.reply.ack()
        call.reply(svc.set_values(raw=raw, **where(call)).text())

    @router.add("wins", usage="wins [30d|90d|all]", summary="milestones reached and kudos (default: 90 days)",
                example=f"{COMMAND} wins 30d")
    def _wins(call: CommandCall) -> None:
        p, w, label = svc.wins(window=plain_text(call.args), **where(call))
        call.reply(f"Wins of {escape(p.name)}", mblocks.wins_blocks(p.name, w, label, p.partner_org))

    # -- buttons -------------------------------------------------------------------------------------------------
    @app.action(ids.MILESTONE_DONE)
    def _done_clicked(ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        reply = Reply.to_action(slack, body)
        with guarded(reply, "open the milestone form"):
            open_done(body["trigger_id"], button_id(action.get("value")), reply.user_id, body.get("response_url"))

    @app.action(ids.MILESTONE_RESCHEDULE)
    def _reschedule_clicked(ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        reply = Reply.to_action(slack, body)
        with guarded(reply, "open the reschedule form"):
            p, m = svc.open_milestone(milestone_id=button_id(action.get("value")), actor=reply.user_id,
                                      what="reschedule it")
            slack.open_view(body["trigger_id"], mblocks.reschedule_modal(p.name, m,
                                                                         response_url=body.get("response_url")))

    @app.action(ids.MILESTONE_EDIT)
    def _edit_clicked(ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        reply = Reply.to_action(slack, body)
        with guarded(reply, "open the milestone form"):
            p, m = svc.open_milestone(milestone_id=button_id(action.get("value")), actor=reply.user_id,
                                      what="edit it")
            slack.open_view(body["trigger_id"], mblocks.milestone_modal(
                partnership_id=p.id or 0, partnership_name=p.name, milestone=m, response_url=body.get("response_url")))

    @app.action(ids.MILESTONE_CANCEL)
    def _cancel_clicked(ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        reply = Reply.to_action(slack, body)
        with guarded(reply, "cancel the milestone"):
            reply(svc.cancel(milestone_id=button_id(action.get("value")), actor=reply.user_id).text())

    # -- forms ---------------------------------------------------------------------------------------------------
    @app.view(ids.MILESTONE_ADD_VIEW)
    def _add_submitted(ack: Callable[..., Any], body: dict[str, Any], view: dict[str, Any]) -> None:
        reply = Reply.to_form(ack, slack, body, field=ids.F_TITLE)
        with guarded(reply, "add the milestone"):
            inp = parse_milestone_view(view)
            partnership_id = int(view_metadata(view).get("partnership_id") or 0)
            try:
                svc.check_input(partnership_id=partnership_id, actor=reply.user_id, inp=inp)
            except Invalid as exc:
                raise under_inputs(exc, _FIELDS) from None
            reply.ack()  # closes the form; adding checks again (in its transaction)
            reply(svc.add(partnership_id=partnership_id, actor=reply.user_id, inp=inp).text())

    @app.view(ids.MILESTONE_EDIT_VIEW)
    def _edit_submitted(ack: Callable[..., Any], body: dict[str, Any], view: dict[str, Any]) -> None:
        reply = Reply.to_form(ack, slack, body, field=ids.F_TITLE)
        with guarded(reply, "save the milestone"):
            meta = view_metadata(view)
            inp = parse_milestone_view(view, due="2000-01-01")  # the date changes through Reschedule only
            partnership_id, milestone_id = int(meta.get("partnership_id") or 0), int(meta.get("milestone_id") or 0)
            try:
                svc.check_input(partnership_id=partnership_id, actor=reply.user_id, inp=inp,
                                milestone_id=milestone_id)
            except Invalid as exc:
                raise under_inputs(exc, _FIELDS) from None
            reply.ack()
            reply(svc.edit(milestone_id=milestone_id, actor=reply.user_id, inp=inp).text())

    @app.view(ids.MILESTONE_DONE_VIEW)
    def _done_submitted(ack: Callable[..., Any], body: dict[str, Any], view: dict[str, Any]) -> None:
        reply = Reply.to_form(ack, slack, body, field=ids.F_CONTRIBUTORS)
        with guarded(reply, "mark the milestone done"):
            v = view_values(view)
            milestone_id = int(view_metadata(view).get("milestone_id") or 0)
            contributors = v.get(ids.F_CONTRIBUTORS, {}).get("selected_users") or []
            note = v.get(ids.F_NOTE, {}).get("value") or ""
            try:
                svc.check_done(milestone_id=milestone_id, actor=reply.user_id, contributors=contributors, note=note)
            except Invalid as exc:
                raise under_inputs(exc, _FIELDS) from None
            reply.ack()
            reply(svc.mark_done(milestone_id=milestone_id, actor=reply.user_id, contributors=contributors,
                                note=note).text())

    @app.view(ids.MILESTONE_RESCHEDULE_VIEW)
    def _reschedule_submitted(ack: Callable[..., Any], body: dict[str, Any], view: dict[str, Any]) -> None:
        reply = Reply.to_form(ack, slack, body, field=ids.F_DUE)
        with guarded(reply, "reschedule the milestone"):
            raw = view_values(view).get(ids.F_DUE, {}).get("selected_date") or ""
            try:
                due = parse_date(raw)
            except ValueError as exc:
                raise Invalid(f"{escape(str(exc))}.", {ids.F_DUE: str(exc)}) from None
            milestone_id = int(view_metadata(view).get("milestone_id") or 0)
            try:
                reply(svc.reschedule(milestone_id=milestone_id, actor=reply.user_id, due=due).text())
            except Invalid as exc:
                raise under_inputs(exc, _FIELDS) from None
