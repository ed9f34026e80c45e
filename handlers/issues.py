"""Listeners for the issue log: /partner issue [<title>|<number>|sla], /partner issues [open|mine|all|critical|stats],
the message shortcut "Log as partnership issue", the check-in summary's "Log as issue" button, the card's buttons
(Acknowledge, Assign, Edit, Waiting on partner, Resume, Resolve, Reopen, Escalate) and the forms behind them. Every
button and form is checked again on the server."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

from slack_bolt import App

from adapters.slack import SlackError
from blocks import ids
from blocks import issues as iblocks
from blocks.text import escape
from handlers.commands import COMMAND, CommandCall, CommandRouter, Usage
from handlers.common import Reply, guarded, plain_text, under_inputs, view_metadata, view_values
from models.issue import ESCALATION_NOTE_MAX, RESOLUTION_MAX, IssueSource
from services.confirmations import button_id
from services.container import Services
from services.errors import Invalid, NotFound
from services.inputs import IssueInput, validate
from services.issues import SEVERITY_CHOICES, Prefill, edit_marks

log = logging.getLogger(__name__)

_NUMBER = re.compile(r"^#?\d{1,8}$")
# IssueInput field -> the form input that shows its error.
_FIELDS = {"title": ids.F_ISSUE_TITLE, "description": ids.F_ISSUE_DESCRIPTION, "severity": ids.F_ISSUE_SEVERITY,
           "owner_ours": ids.F_ISSUE_OWNER_OURS, "owner_partner": ids.F_ISSUE_OWNER_PARTNER,
           "due_date": ids.F_ISSUE_DUE, "note": ids.F_ISSUE_NOTE}
_USAGE = (
    Usage("issue <title>", "log an issue at once (normal severity; you are its reporter); alone: a form",
          f"{COMMAND} issue API keys expire too early"),
    Usage("issue <number>", "an issue's card, privately, with its history", f"{COMMAND} issue 7"),
    Usage("issue sla", "the SLA targets per severity; owners change them in a form", f"{COMMAND} issue sla"),
)


def parse_issue_view(view: dict[str, Any]) -> IssueInput:
    return parse_issue_values(view_values(view))


def parse_issue_values(v: dict[str, dict[str, Any]]) -> IssueInput:
    """The logging and Edit forms' inputs (the Edit form has no owners: they come out None), checked as at
    logging; Invalid under the inputs. The Edit form's "Remove the due date" box, ticked, empties the date."""
    if any(o.get("value") == "clear" for o in v.get(ids.F_ISSUE_DUE_CLEAR, {}).get("selected_options") or []):
        v = {**v, ids.F_ISSUE_DUE: {}}
    try:
        return validate(
            IssueInput,
            title=v.get(ids.F_ISSUE_TITLE, {}).get("value") or "",
            description=v.get(ids.F_ISSUE_DESCRIPTION, {}).get("value") or "",
            severity=(v.get(ids.F_ISSUE_SEVERITY, {}).get("selected_option") or {}).get("value") or "normal",
            owner_ours=v.get(ids.F_ISSUE_OWNER_OURS, {}).get("selected_user"),
            owner_partner=v.get(ids.F_ISSUE_OWNER_PARTNER, {}).get("selected_user"),
            due_date=v.get(ids.F_ISSUE_DUE, {}).get("selected_date"),
        )
    except Invalid as exc:
        raise under_inputs(exc, _FIELDS) from None


def _channel_of(body: dict[str, Any]) -> str | None:
    return (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")


def register(app: App, services: Services, router: CommandRouter) -> None:
    svc = services.issues
    slack = services.slack

    def open_form(trigger_id: str, pre: Prefill, actor: str, response_url: str | None) -> None:
        meta = {"partnership_id": pre.partnership.id, "source": pre.source.value, "link": pre.source_link,
                "message_ts": pre.message_ts, "channel_id": pre.partnership.channel_id, "reporter": pre.reporter,
                "response_url": response_url}
        slack.open_view(trigger_id, iblocks.issue_modal(
            partnership=pre.partnership.name, meta=meta, severities=SEVERITY_CHOICES, title=pre.title,
            description=pre.description, reporter=pre.reporter if pre.reporter != actor else None,
            cut_from=pre.cut_from, linked=pre.message_ts is not None))

    # -- /partner issue …, /partner issues … -----------------------------------------------------------------------
    @router.add("issue", usage=_USAGE[0].usage, summary=_USAGE[0].summary, example=_USAGE[0].example,
                more=_USAGE[1:])
    def _issue(call: CommandCall) -> None:
        raw = call.args.strip()
        text = plain_text(raw)
        where = {"channel_id": call.channel_id, "actor": call.user_id}
        if not raw:
            p = svc.prepare_log(**where)
            open_form(call.trigger_id, Prefill(p), call.user_id, call.response_url)
        elif text.lower() == "sla":
            v = svc.sla(**where)
            if v.may_change:
                st = v.settings
                slack.open_view(call.trigger_id, iblocks.sla_modal(
                    v.partnership.name, v.targets, st.business_hours, st.days, st.start, st.end,
                    {"partnership_id": v.partnership.id, "response_url": call.response_url}))
            call.reply(v.text + ("" if v.may_change
                                 else "\nOwners of the partnership change them with `/partner issue sla`."))
        elif _NUMBER.match(text):
            issue_id = svc.find(ref=text, **where)
            v = svc.view(issue_id=issue_id, actor=call.user_id)
            call.reply(iblocks.card_text(v.issue), iblocks.detail_blocks(
                v.issue, v.partnership.name, v.clocks, v.events, now=services.clock.now()))
        else:
            p = svc.prepare_log(**where)  # who may, before what they typed
            try:
                inp = validate(IssueInput, title=text)
            except Invalid as exc:  # a command's text is gone once sent: give it back to copy
                raise Invalid(f"{exc} `{COMMAND} issue` alone opens a form, with a description for the rest. "
                              f"What you typed:\n>{escape(text)}") from None
            call.reply.ack()
            call.reply(svc.log(partnership_id=p.id or 0, actor=call.user_id, inp=inp,
                               creation_key=f"cmd:{call.trigger_id}").text())

    @router.add("issues", usage="issues [open|mine|all|critical]",
                summary="the issues, most severe first, then oldest (default: open ones)",
                example=f"{COMMAND} issues mine",
                more=(Usage("issues stats", "the issues as they stand now; mean times to acknowledge and resolve, and "
                            "SLA compliance over 30 and 90 days", f"{COMMAND} issues stats"),))
    def _issues(call: CommandCall) -> None:
        which = plain_text(call.args).lower()
        where = {"channel_id": call.channel_id, "actor": call.user_id}
        if which == "stats":
            p, now, windows = svc.stats(**where)
            call.reply(f"Issue figures of {escape(p.name)}", iblocks.stats_blocks(p.name, now, windows))
            return
        call.reply.ack()  # links come from Slack, one call per card shown: answered through the response URL
        p, rows, label = svc.listing(which=which or "open", **where)
        lines = [iblocks.list_line(i, sla, svc.link(i)) for i, sla in rows[:iblocks.LIST_SHOWN]]
        call.reply(f"Issues of {escape(p.name)}", iblocks.list_blocks(p.name, label, lines, len(rows)))

    # -- the message shortcut and the check-in summary's button ----------------------------------------------------
    @app.shortcut(ids.ISSUE_SHORTCUT)
    def _shortcut(ack: Callable[..., Any], body: dict[str, Any]) -> None:
        clicked_at = time.monotonic()  # the trigger_id's 3 s run from about now: the names get part of them
        ack()
        reply = Reply.to_action(slack, body)
        with guarded(reply, "log the message as an issue"):
            channel_id = _channel_of(body) or ""
            message = body.get("message") if isinstance(body.get("message"), dict) else {}
            pre = svc.prefill_from_message(channel_id=channel_id, actor=reply.user_id,
                                           text=str(message.get("text") or ""),
                                           message_ts=str(message.get("ts") or "") or None, clicked_at=clicked_at)
            open_form(body["trigger_id"], pre, reply.user_id, body.get("response_url"))  # the link comes later

    @app.action(ids.ISSUE_FROM_ANSWER)
    def _from_answer(ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        reply = Reply.to_action(slack, body)
        with guarded(reply, "open the issue form"):
            answer, _, question = str(action.get("value") or "").partition(":")
            if not answer.isdigit() or not question.isdigit():
                raise NotFound("That check-in answer no longer exists.")
            pre = svc.prefill_from_answer(answer_id=int(answer), question=int(question), actor=reply.user_id)
            open_form(body["trigger_id"], pre, reply.user_id, body.get("response_url"))

    # -- the card's buttons ----------------------------------------------------------------------------------------
    def change_button(action_id: str, what: str, run: Callable[..., Any]) -> None:
        @app.action(action_id)
        def _clicked(ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any]) -> None:
            ack()
            reply = Reply.to_action(slack, body)
            with guarded(reply, what):
                reply(run(issue_id=button_id(action.get("value")), actor=reply.user_id,
                          channel_id=_channel_of(body)).text())

    change_button(ids.ISSUE_ACK, "acknowledge the issue", svc.acknowledge)
    change_button(ids.ISSUE_WAIT, "mark the issue waiting on the partner", svc.wait)
    change_button(ids.ISSUE_RESUME, "resume the issue", svc.resume)
    change_button(ids.ISSUE_REOPEN, "reopen the issue", svc.reopen)

    def form_button(action_id: str, action_name: str, build: Callable[..., dict[str, Any]], *,
                    extra: Callable[[Any], dict[str, Any]] | None = None) -> None:
        @app.action(action_id)
        def _clicked(ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any]) -> None:
            ack()
            reply = Reply.to_action(slack, body)
            with guarded(reply, "open the form"):
                i = svc.for_action(issue_id=button_id(action.get("value")), actor=reply.user_id, action=action_name,
                                   channel_id=_channel_of(body))
                meta = {"issue_id": i.id, "channel_id": _channel_of(body), "response_url": body.get("response_url"),
                        **(extra(i) if extra is not None else {})}
                slack.open_view(body["trigger_id"], build(i, meta))

    form_button(ids.ISSUE_ASSIGN, "assign", iblocks.assign_modal)
    form_button(ids.ISSUE_RESOLVE, "resolve", iblocks.resolve_modal)
    form_button(ids.ISSUE_ESCALATE, "escalate", iblocks.escalate_modal)
    form_button(ids.ISSUE_EDIT, "edit", lambda i, meta: iblocks.edit_modal(i, meta, SEVERITY_CHOICES),
                extra=lambda i: {"was": edit_marks(i)})  # what the form opened with: see edit_marks

    # -- forms -----------------------------------------------------------------------------------------------------
    @app.view(ids.ISSUE_VIEW)
    def _log_submitted(ack: Callable[..., Any], body: dict[str, Any], view: dict[str, Any]) -> None:
        reply = Reply.to_form(ack, slack, body, field=ids.F_ISSUE_TITLE)
        with guarded(reply, "log the issue"):
            inp = parse_issue_view(view)
            meta = view_metadata(view)
            partnership_id = int(meta.get("partnership_id") or 0)
            try:
                svc.check_input(partnership_id=partnership_id, actor=reply.user_id, inp=inp)
            except Invalid as exc:
                raise under_inputs(exc, _FIELDS) from None
            source = meta.get("source") if meta.get("source") in IssueSource.__members__.values() else "form"
            reply.ack()  # closes the form; logging checks again (in its transaction)
            link = meta.get("link") or None
            if not link and meta.get("message_ts") and meta.get("channel_id"):  # the message shortcut's message
                try:
                    link = slack.permalink(str(meta["channel_id"]), str(meta["message_ts"]))
                except SlackError as exc:  # logged without its link
                    log.info("no link to the message logged as an issue: %s", exc.code)
            reply(svc.log(partnership_id=partnership_id, actor=reply.user_id, inp=inp,
                          creation_key=f"view:{view.get('id')}", source=IssueSource(source), source_link=link,
                          reporter=meta.get("reporter") or None).text())

    def issue_form(callback_id: str, what: str, field: str,
                   run: Callable[[str, dict[str, Any], dict[str, Any], str], Any],
                   check: Callable[[str, dict[str, Any], dict[str, Any]], None] | None = None) -> None:
        @app.view(callback_id)
        def _submitted(ack: Callable[..., Any], body: dict[str, Any], view: dict[str, Any]) -> None:
            reply = Reply.to_form(ack, slack, body, field=field)
            with guarded(reply, what):
                meta = view_metadata(view)
                values = view_values(view)
                if check is not None:
                    try:
                        check(reply.user_id, meta, values)
                    except Invalid as exc:
                        raise under_inputs(exc, _FIELDS) from None
                reply.ack()
                reply(run(reply.user_id, meta, values, f"view:{view.get('id')}").text())

    def note_of(values: dict[str, Any]) -> str:
        return str(values.get(ids.F_ISSUE_NOTE, {}).get("value") or "")

    def owners_of(values: dict[str, Any]) -> tuple[str | None, str | None]:
        return (values.get(ids.F_ISSUE_OWNER_OURS, {}).get("selected_user") or None,
                values.get(ids.F_ISSUE_OWNER_PARTNER, {}).get("selected_user") or None)

    def still_allowed(actor: str, meta: dict[str, Any], action: str) -> None:
        """Who may, and whether the issue's status allows it, checked again while the form waits for its answer:
        refused then, the form stays open with what was typed (someone resolved the issue meanwhile)."""
        svc.for_action(issue_id=int(meta.get("issue_id") or 0), actor=actor, action=action,
                       channel_id=meta.get("channel_id"))

    def check_resolve(actor: str, meta: dict[str, Any], values: dict[str, Any]) -> None:
        svc.check_note(note_of(values), limit=RESOLUTION_MAX, field="note", required=True)
        still_allowed(actor, meta, "resolve")

    def check_escalate(actor: str, meta: dict[str, Any], values: dict[str, Any]) -> None:
        svc.check_note(note_of(values), limit=ESCALATION_NOTE_MAX, field="note", required=False)
        still_allowed(actor, meta, "escalate")

    def check_assign(actor: str, meta: dict[str, Any], values: dict[str, Any]) -> None:
        ours, partner = owners_of(values)
        svc.check_assign(issue_id=int(meta.get("issue_id") or 0), actor=actor, owner_ours=ours, owner_partner=partner)

    def edited(meta: dict[str, Any], values: dict[str, Any]) -> tuple[IssueInput, list[str] | None]:
        """The form's values, and the fields the person changed in it (None: a form without its opening marks)."""
        inp = parse_issue_values(values)
        was = meta.get("was")
        if not isinstance(was, dict):
            return inp, None
        return inp, [name for name, mark in edit_marks(inp).items() if was.get(name) != mark]

    def check_edit(actor: str, meta: dict[str, Any], values: dict[str, Any]) -> None:
        inp, fields = edited(meta, values)
        svc.check_edit(issue_id=int(meta.get("issue_id") or 0), actor=actor, inp=inp, fields=fields)

    def run_edit(actor: str, meta: dict[str, Any], values: dict[str, Any], _: str) -> Any:
        inp, fields = edited(meta, values)
        return svc.edit(issue_id=int(meta.get("issue_id") or 0), actor=actor, inp=inp, fields=fields,
                        channel_id=meta.get("channel_id"))

    issue_form(ids.ISSUE_EDIT_VIEW, "edit the issue", ids.F_ISSUE_TITLE, run_edit, check_edit)
    issue_form(ids.ISSUE_RESOLVE_VIEW, "resolve the issue", ids.F_ISSUE_NOTE, lambda actor, meta, values, _:
               svc.resolve(issue_id=int(meta.get("issue_id") or 0), actor=actor, note=note_of(values),
                           channel_id=meta.get("channel_id")), check_resolve)
    issue_form(ids.ISSUE_ESCALATE_VIEW, "escalate the issue", ids.F_ISSUE_NOTE, lambda actor, meta, values, key:
               svc.escalate(issue_id=int(meta.get("issue_id") or 0), actor=actor, note=note_of(values),
                            channel_id=meta.get("channel_id"), request_key=key), check_escalate)
    issue_form(ids.ISSUE_ASSIGN_VIEW, "assign the issue", ids.F_ISSUE_OWNER_OURS, lambda actor, meta, values, _:
               svc.assign(issue_id=int(meta.get("issue_id") or 0), actor=actor, owner_ours=owners_of(values)[0],
                          owner_partner=owners_of(values)[1], channel_id=meta.get("channel_id")), check_assign)

    @app.view(ids.ISSUE_SLA_VIEW)
    def _sla_submitted(ack: Callable[..., Any], body: dict[str, Any], view: dict[str, Any]) -> None:
        reply = Reply.to_form(ack, slack, body, field=ids.F_SLA_DAYS)
        with guarded(reply, "save the SLA targets"):
            v = view_values(view)
            partnership_id = int(view_metadata(view).get("partnership_id") or 0)
            svc.prepare_sla_form(partnership_id=partnership_id, actor=reply.user_id)  # owners only
            raw = {sev: (str(v.get(f"{ids.F_SLA_ACK}_{sev}", {}).get("value") or ""),
                         str(v.get(f"{ids.F_SLA_RESOLVE}_{sev}", {}).get("value") or "")) for sev in SEVERITY_CHOICES}
            business = any(o.get("value") == "yes" for o in v.get(ids.F_SLA_BUSINESS, {}).get("selected_options") or [])
            days = str(v.get(ids.F_SLA_DAYS, {}).get("value") or "mon-fri").strip()
            start = str(v.get(ids.F_SLA_START, {}).get("value") or "09:00").strip()
            end = str(v.get(ids.F_SLA_END, {}).get("value") or "17:00").strip()
            targets, _ = svc.parse_sla(raw, business, days, start, end)
            reply.ack()
            reply(svc.save_sla(partnership_id=partnership_id, actor=reply.user_id, targets=targets,
                               business_hours=business, days=days, start=start, end=end).text())

