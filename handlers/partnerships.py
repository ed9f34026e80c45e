"""Listeners for partnerships: /partner new|info|list|add|remove|invite|close, the creation modal,
the close confirmation buttons, the App Home tab, and the channel events (archived, people joining or leaving)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltRequest

from adapters.slack import SlackError
from blocks import ids
from blocks import partnerships as pblocks
from blocks.text import escape
from handlers.commands import COMMAND, CommandCall, CommandRouter
from handlers.common import Reply, event_time, guarded, plain_text, retry_num, user_id_from_mention, view_values
from services.confirmations import button_id
from services.container import Services
from services.errors import Invalid
from services.inputs import NewPartnership, parse_role, parse_side, split_emails, validate
from services.partnerships import Access

log = logging.getLogger(__name__)


def parse_new_partnership_view(view: dict[str, Any], default_timezone: str) -> NewPartnership:
    """Read the modal's state into a validated NewPartnership (raises Invalid with per-field errors)."""
    values = view_values(view)

    def field(block: str) -> dict[str, Any]:
        return values.get(block) or {}

    private = any(o.get("value") == "private" for o in field(ids.F_PRIVATE).get("selected_options") or [])
    return validate(
        NewPartnership,
        name=field(ids.F_NAME).get("value") or "",
        partner_org=field(ids.F_PARTNER_ORG).get("value") or "",
        goals=field(ids.F_GOALS).get("value") or "",
        timezone=field(ids.F_TIMEZONE).get("value") or default_timezone,
        is_private=private,
        owners=field(ids.F_OWNERS).get("selected_users") or [],
        members=field(ids.F_MEMBERS).get("selected_users") or [],
        partner_emails=split_emails(field(ids.F_EMAILS).get("value")),
    )


def register(app: App, services: Services, router: CommandRouter) -> None:
    svc = services.partnerships
    default_tz = services.settings.default_timezone

    def refresh_home(user_id: str) -> None:
        services.slack.publish_home(user_id, pblocks.home_view(svc.for_user(user_id)))

    # -- /partner new ----------------------------------------------------------------------------
    @router.add("new", usage="new [name]", summary="start a partnership: a modal, or at once with a name",
                example=f"{COMMAND} new Acme Logistics")
    def _new(call: CommandCall) -> None:
        name = plain_text(call.args)
        if not name:
            view = pblocks.new_partnership_modal(
                default_timezone=default_tz, creator=call.user_id, response_url=call.response_url
            )
            services.slack.open_view(call.trigger_id, view)
            return
        req = validate(NewPartnership, name=name, timezone=default_tz)
        call.reply.ack(f":hourglass_flowing_sand: Setting up *{escape(req.name)}*…")
        outcome = svc.create(req, actor=call.user_id, team_id=call.team_id, creation_key=f"cmd:{call.trigger_id}")
        call.reply(outcome.text())
        if outcome.created:
            refresh_home(call.user_id)

    @app.view(ids.NEW_PARTNERSHIP_VIEW)
    def _new_submitted(ack: Callable[..., Any], body: dict[str, Any], view: dict[str, Any]) -> None:
        reply = Reply.to_form(ack, services.slack, body, field=ids.F_NAME)
        with guarded(reply, "create the partnership"):
            req = parse_new_partnership_view(view, default_tz)
            svc.check_name_free(req.name, creation_key=f"view:{view['id']}")
            reply.ack()  # closes the modal
            team_id = (body.get("team") or {}).get("id") or view.get("team_id") or ""
            outcome = svc.create(req, actor=reply.user_id, team_id=team_id, creation_key=f"view:{view['id']}")
            reply(outcome.text())
            if outcome.created:
                refresh_home(reply.user_id)

    # -- /partner info, list ---------------------------------------------------------------------
    @router.add("info", usage="info", summary="the charter, people by role and side, invitations, recent changes",
                example=f"{COMMAND} info")
    def _info(call: CommandCall) -> None:
        d = svc.require(call.channel_id, call.user_id, "see its details", need=Access.MEMBER, open_only=False)
        audit = svc.audit_trail(d.partnership.id or 0, last=pblocks.RECENT_CHANGES)
        call.reply(f"Partnership {escape(d.partnership.name)}",
                   pblocks.info_blocks(d.partnership, d.members, d.invitations, audit))

    @router.add("list", usage="list", summary="the partnerships you belong to", example=f"{COMMAND} list")
    def _list(call: CommandCall) -> None:
        call.reply("Your partnerships", pblocks.list_blocks(svc.for_user(call.user_id)))

    # -- people ------------------------------------------------------------------------------------
    @router.add("add", usage="add @person [owner|member|sponsor|partner] [ours|partner]",
                summary="add someone with a role (default member; people from the partner's org: partner) and, "
                "when Slack cannot tell, their side",
                example=f"{COMMAND} add @ana sponsor partner")
    def _add(call: CommandCall) -> None:
        parts = call.args.split()
        user_id = user_id_from_mention(parts[0]) if parts else None
        if user_id is None:
            raise Invalid(f"Say who to add with an @mention: `{COMMAND} add @person [role] [ours|partner]`.")
        role = parse_role(plain_text(parts[1]) if len(parts) > 1 else None)
        side = parse_side(plain_text(" ".join(parts[2:])) if len(parts) > 2 else None)
        call.reply.ack()
        call.reply(svc.add_member(channel_id=call.channel_id, actor=call.user_id, user_id=user_id, role=role,
                                  side=side).text())

    @router.add("remove", usage="remove @person", summary="take someone out of the partnership and its channel",
                example=f"{COMMAND} remove @ana")
    def _remove(call: CommandCall) -> None:
        user_id = user_id_from_mention(call.args.split()[0]) if call.args.split() else None
        if user_id is None:
            raise Invalid(f"Say who to remove with an @mention: `{COMMAND} remove @person`.")
        call.reply.ack()
        call.reply(svc.remove_member(channel_id=call.channel_id, actor=call.user_id, user_id=user_id).text())

    @router.add("invite", usage="invite <email>", summary="send (or retry) a Slack Connect invitation to a partner",
                example=f"{COMMAND} invite ana@partner.com")
    def _invite(call: CommandCall) -> None:
        if not call.args:
            raise Invalid(f"Give the partner contact's email: `{COMMAND} invite name@partner.com`.")
        call.reply.ack()
        outcome = svc.invite_partner(channel_id=call.channel_id, actor=call.user_id, email=plain_text(call.args))
        call.reply(outcome.text())

    # -- close ---------------------------------------------------------------------------------------
    @router.add("close", usage="close [reason]", summary="close the partnership and archive its channel (owners)",
                example=f"{COMMAND} close contract ended")
    def _close(call: CommandCall) -> None:
        call.reply.ack()  # keeping the request is a write: answer Slack first
        p, pending = svc.prepare_close(channel_id=call.channel_id, actor=call.user_id, reason=plain_text(call.args))
        call.reply(f"Close {escape(p.name)}?", pblocks.close_confirm_blocks(p, pending.data["reason"], pending.id or 0))

    @app.action(ids.CLOSE_CONFIRM)
    def _close_confirmed(ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        reply = Reply.to_action(services.slack, body)
        with guarded(reply, "close the partnership"):
            outcome = svc.confirm_close(confirmation_id=button_id(action.get("value")), actor=reply.user_id)
            reply(outcome.text(), replace=True)
            refresh_home(reply.user_id)

    @app.action(ids.CLOSE_CANCEL)
    def _close_cancelled(ack: Callable[..., Any], body: dict[str, Any]) -> None:
        ack()
        Reply.to_action(services.slack, body)("Nothing was closed.", replace=True)

    # -- App Home ------------------------------------------------------------------------------------
    @app.event("app_home_opened")
    def _home_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home":
            return
        try:
            refresh_home(event["user"])
        except SlackError as exc:  # nobody to tell: the tab keeps what it showed
            log.warning("could not publish the Home tab of %s: %s", event["user"], exc.code)

    # -- a partnership's channel archived or unarchived in Slack (not with /partner close) --------------------
    def channel_listener(archived: bool) -> Callable[[dict[str, Any]], None]:
        def listener(event: dict[str, Any]) -> None:
            svc.channel_archived(event["channel"], archived=archived, actor=event.get("user"))

        return listener

    for name, archived in (("channel_archive", True), ("group_archive", True), ("channel_unarchive", False),
                           ("group_unarchive", False)):
        app.event(name)(channel_listener(archived))

    # -- people joining or leaving a partnership's channel in Slack --------------------------------------------
    # Slack acks events before these run, and retries a delivery it thinks failed (X-Slack-Retry-Num), even
    # minutes later: the service applies each event once and ignores one older than the last applied.
    @app.event("member_joined_channel")
    def _member_joined(event: dict[str, Any], body: dict[str, Any], request: BoltRequest) -> None:
        if retry_num(request.headers):
            log.info("member_joined_channel delivered again (retry %s)", retry_num(request.headers))
        svc.member_joined(channel_id=event["channel"], user_id=event["user"], at=event_time(event, body),
                          inviter=event.get("inviter") if isinstance(event.get("inviter"), str) else None)

    @app.event("member_left_channel")
    def _member_left(event: dict[str, Any], body: dict[str, Any], request: BoltRequest) -> None:
        if retry_num(request.headers):
            log.info("member_left_channel delivered again (retry %s)", retry_num(request.headers))
        svc.member_left(channel_id=event["channel"], user_id=event["user"], at=event_time(event, body))

    @app.action(ids.NEW_PARTNERSHIP_BUTTON)
    def _home_new(ack: Callable[..., Any], body: dict[str, Any]) -> None:
        ack()
        reply = Reply.to_action(services.slack, body)
        with guarded(reply, "open the new-partnership form"):
            services.slack.open_view(
                body["trigger_id"], pblocks.new_partnership_modal(default_timezone=default_tz, creator=reply.user_id)
            )
