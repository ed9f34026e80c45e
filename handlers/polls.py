"""Listeners for polls: /partner poll [list|close [n]|export [n]|"Question?" "A" "B" ...], the new-poll form,
the vote buttons, the open-text Answer button and form, and the Close poll and Export CSV buttons."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from slack_bolt import App

from blocks import ids
from blocks import polls as pblocks
from blocks.text import escape
from handlers.commands import COMMAND, CommandCall, CommandRouter, Usage
from handlers.common import Reply, after_ack, echo, guarded, plain_text, view_metadata, view_values
from models.poll import POLL_QUESTION_MAX
from services.container import Services
from services.errors import Invalid
from services.inputs import QUICK_POLL_EXAMPLE, check_poll, parse_quick_poll, split_options, straight_quotes

log = logging.getLogger(__name__)

_POLL_USAGE = (
    Usage("poll", "start a poll in a form: choices, rating, NPS or open text; anonymous or not",
          f"{COMMAND} poll"),
    Usage('poll "Question?" "Option A" "Option B" [anonymous] [closes 3d]',
          "start a poll quickly (no options: an open-text question)", QUICK_POLL_EXAMPLE),
    Usage("poll list", "the open polls and the last closed ones, with links", f"{COMMAND} poll list"),
    Usage("poll close [number]", "close a poll early (its creator or an owner)", f"{COMMAND} poll close 3"),
    Usage("poll export [number]", "get a poll's answers as a CSV file in your direct message with the app "
          "(its creator or an owner)", f"{COMMAND} poll export 3"),
)
_VOTE = re.compile(rf"^{ids.POLL_VOTE}_\d+$")


def read_poll_form(view: dict[str, Any]) -> dict[str, Any]:
    """The new-poll form's values, as `check_poll` takes them."""
    v = view_values(view)

    def selected(block: str, default: str) -> str:
        return str((v.get(block, {}).get("selected_option") or {}).get("value") or default)

    return {
        "question": v.get(ids.F_POLL_QUESTION, {}).get("value") or "",
        "kind": selected(ids.F_POLL_KIND, "single"),
        "options": split_options(v.get(ids.F_POLL_OPTIONS, {}).get("value")),
        "max_picks": v.get(ids.F_POLL_MAX_PICKS, {}).get("value"),
        "anonymous": bool(v.get(ids.F_POLL_ANONYMOUS, {}).get("selected_options")),
        "results": selected(ids.F_POLL_RESULTS, "live"),
        "closes": v.get(ids.F_POLL_CLOSES, {}).get("value"),
        "audience": selected(ids.F_POLL_AUDIENCE, "all"),
        "chosen": v.get(ids.F_POLL_CHOSEN, {}).get("selected_users") or [],
        "remind": selected(ids.F_POLL_REMINDER, "half"),
    }


def _poll_id(value: Any) -> int:
    head = str(value or "").split(":", 1)[0]
    return int(head) if head.isdigit() else 0


def register(app: App, services: Services, router: CommandRouter) -> None:
    svc = services.polls

    @router.add("poll", usage=_POLL_USAGE[0].usage, summary=_POLL_USAGE[0].summary,
                example=_POLL_USAGE[0].example, more=_POLL_USAGE[1:])
    def _poll(call: CommandCall) -> None:
        args = plain_text(call.args)
        word, _, rest = args.partition(" ")
        if word.lower() == "list":
            call.reply.ack()  # linking each poll asks Slack once per poll: longer than Slack waits for the answer
            p, listed = svc.listing(channel_id=call.channel_id, actor=call.user_id)
            call.reply(f"Polls of {escape(p.name)}", pblocks.list_blocks(p.name, listed))
            return
        if word.lower() in ("close", "export"):
            verb = word.lower()
            number = rest.strip().lstrip("#")
            if number and not number.isdigit():
                newest = "the newest open poll" if verb == "close" else "the newest poll"
                raise Invalid(f"`{echo(rest, 20)}` is not a poll number: `{COMMAND} poll {verb} 3`, or "
                              f"`{COMMAND} poll {verb}` for {newest}.")
            call.reply.ack()  # an export uploads a file: longer than Slack waits for the answer
            act = svc.close_early if verb == "close" else svc.export
            call.reply(act(actor=call.user_id, channel_id=call.channel_id,
                           number=int(number) if number else None).text())
            return
        p = svc.prepare(channel_id=call.channel_id, actor=call.user_id)
        form = {"partnership_id": p.id or 0, "partnership_name": p.name, "timezone": p.timezone,
                "response_url": call.response_url}
        if not args:
            services.slack.open_view(call.trigger_id, pblocks.poll_modal(**form))
            return
        try:
            quick = parse_quick_poll(args)
            spec = check_poll(question=quick.question, kind="single" if quick.options else "text",
                              options=quick.options, anonymous=quick.anonymous, closes=quick.closes,
                              now=services.clock.now(), zone=p.timezone)
            svc.check_audience(partnership_id=p.id or 0, spec=spec)
        except Invalid as exc:  # show the form with what could be read, and say what was wrong
            prefill = _prefill(args)
            services.slack.open_view(call.trigger_id, pblocks.poll_modal(**form, **prefill))
            call.reply(f":warning: {exc} The form is open to finish it; or retry like this: "
                       f"`{QUICK_POLL_EXAMPLE}`")
            return
        call.reply.ack()
        call.reply(svc.create(partnership_id=p.id or 0, actor=call.user_id, spec=spec,
                              creation_key=f"cmd:{call.trigger_id}").text())

    @app.view(ids.POLL_VIEW)
    def _form_submitted(ack: Callable[..., Any], body: dict[str, Any], view: dict[str, Any]) -> None:
        reply = Reply.to_form(ack, services.slack, body, field=ids.F_POLL_QUESTION)
        with guarded(reply, "start the poll"):
            partnership_id = int(view_metadata(view).get("partnership_id") or 0)
            p = services.partnerships.get(partnership_id)
            zone = p.partnership.timezone if p else services.settings.default_timezone
            spec = check_poll(**read_poll_form(view), now=services.clock.now(), zone=zone)
            svc.check_audience(partnership_id=partnership_id, spec=spec)
            reply.ack()  # closes the form; creating re-checks that the person may
            reply(svc.create(partnership_id=partnership_id, actor=reply.user_id, spec=spec,
                             creation_key=f"view:{view.get('id') or body.get('trigger_id')}").text())

    @app.action(_VOTE)
    def _vote(ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()  # a storm of clicks: the vote is saved and confirmed off Bolt's pool, so acks never wait for it
        after_ack(services.after_ack, lambda: _record_vote(body, action))

    def _record_vote(body: dict[str, Any], action: dict[str, Any]) -> None:
        reply = Reply.to_action(services.slack, body)
        with guarded(reply, "record your vote"):
            value = str(action.get("value") or "")
            option = value.split(":", 1)[1] if ":" in value else ""
            if not option.lstrip("-").isdigit():
                raise Invalid("That button is not part of a poll any more; vote with the buttons on the poll.")
            recorded = svc.vote(poll_id=_poll_id(value), user_id=reply.user_id, option=int(option))
            reply(svc.results_summary(recorded))

    @app.action(ids.POLL_ANSWER)
    def _answer_clicked(ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        reply = Reply.to_action(services.slack, body)
        with guarded(reply, "open the answer form"):
            view = svc.answer_form(poll_id=_poll_id(action.get("value")), user_id=reply.user_id)
            services.slack.open_view(body["trigger_id"], view)

    @app.view(ids.POLL_ANSWER_VIEW)
    def _answer_submitted(ack: Callable[..., Any], body: dict[str, Any], view: dict[str, Any]) -> None:
        reply = Reply.to_form(ack, services.slack, body, field=ids.F_POLL_ANSWER)
        with guarded(reply, "save your answer"):
            poll_id = _poll_id(view_metadata(view).get("poll"))
            text = svc.check_answer(poll_id=poll_id, user_id=reply.user_id,
                                    text=view_values(view).get(ids.F_POLL_ANSWER, {}).get("value") or "")
            reply.ack()  # closes the form
            reply(svc.results_summary(svc.answer(poll_id=poll_id, user_id=reply.user_id, text=text)))

    @app.action(ids.POLL_CLOSE)
    def _close_clicked(ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        reply = Reply.to_action(services.slack, body)
        with guarded(reply, "close the poll"):
            reply(svc.close_early(actor=reply.user_id, poll_id=_poll_id(action.get("value"))).text())

    @app.action(ids.POLL_EXPORT)
    def _export_clicked(ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        reply = Reply.to_action(services.slack, body)
        with guarded(reply, "export the poll"):
            reply(svc.export(actor=reply.user_id, poll_id=_poll_id(action.get("value"))).text())

    @app.action(ids.POLL_OPEN)
    def _link_clicked(ack: Callable[..., Any]) -> None:
        ack()  # a URL button: Slack opens the link; the click only needs an answer


def _prefill(args: str) -> dict[str, Any]:
    """What a quick command that could not be read whole still says, for the form."""
    try:
        quick = parse_quick_poll(args)
        return {"question": quick.question, "options": quick.options, "anonymous": quick.anonymous,
                "closes": quick.closes}
    except Invalid:
        return {"question": straight_quotes(args).strip().strip("\"'")[:POLL_QUESTION_MAX]}
