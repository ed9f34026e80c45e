"""The `/partner` slash command: one router, subcommands registered by feature modules."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import App

from blocks.kit import chunked_sections, context, section
from handlers.common import Reply, echo, guarded
from services.container import Services

log = logging.getLogger(__name__)

COMMAND = "/partner"


@dataclass(frozen=True)
class CommandCall:
    """One invocation of a subcommand."""

    args: str  # the text after the subcommand, as Slack sent it
    user_id: str
    channel_id: str
    team_id: str
    trigger_id: str
    response_url: str
    reply: Reply


Handler = Callable[[CommandCall], None]


@dataclass(frozen=True)
class Usage:
    usage: str
    summary: str
    example: str


@dataclass(frozen=True)
class Subcommand:
    name: str
    forms: tuple[Usage, ...]  # the first is the main form; the others are listed in the help too
    handler: Handler


class CommandRouter:
    """Maps `/partner <sub> ...` to handlers; unknown or empty subcommands get the help."""

    def __init__(self) -> None:
        self._subs: dict[str, Subcommand] = {}

    def add(
        self, name: str, *, usage: str, summary: str, example: str, more: tuple[Usage, ...] = ()
    ) -> Callable[[Handler], Handler]:
        def decorator(fn: Handler) -> Handler:
            self._subs[name] = Subcommand(name, (Usage(usage, summary, example), *more), fn)
            return fn

        return decorator

    def help_blocks(self, note: str | None = None) -> list[dict[str, Any]]:
        lines = [f"`{COMMAND} {f.usage}`: {f.summary}\n      e.g. `{f.example}`"
                 for s in self._subs.values() for f in s.forms]
        blocks = [section(note)] if note else []
        blocks += chunked_sections("*Partnerbot commands*", lines)
        blocks.append(context("Commands about one partnership run in its channel. Replies like this one are "
                              "shown only to you."))
        return blocks

    def dispatch(self, services: Services, body: dict[str, Any], ack: Callable[..., Any]) -> None:
        text = (body.get("text") or "").strip()
        name, _, rest = text.partition(" ")
        reply = Reply(ack=ack, slack=services.slack, user_id=body.get("user_id", ""),
                      response_url=body.get("response_url"))
        sub = self._subs.get(name.lower())
        if sub is None:
            note = f"`{echo(name)}` is not a Partnerbot command. Here is what you can do:" if name else None
            reply("Partnerbot commands", self.help_blocks(note))
            return
        call = CommandCall(
            args=rest.strip(), user_id=body.get("user_id", ""), channel_id=body.get("channel_id", ""),
            team_id=body.get("team_id", ""), trigger_id=body.get("trigger_id", ""),
            response_url=body.get("response_url", ""), reply=reply,
        )
        with guarded(reply, f"run `{COMMAND} {sub.name}`"):
            sub.handler(call)


def register(app: App, services: Services, router: CommandRouter) -> None:
    @router.add("help", usage="help", summary="list every command", example=f"{COMMAND} help")
    def _help(call: CommandCall) -> None:
        call.reply("Partnerbot commands", router.help_blocks())

    @app.command(COMMAND)
    def _partner(ack: Callable[..., Any], body: dict[str, Any]) -> None:
        router.dispatch(services, body, ack)
