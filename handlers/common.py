"""What every listener shares: reading Slack's text formats, and answering the person privately.

`Reply` answers through the HTTP ack while the request is still open, and through the response_url
(or a DM) afterwards. `guarded` is the one boundary where failures become private messages.
"""

from __future__ import annotations

import html
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from adapters.slack import SlackError, SlackGateway
from services.errors import UserError
from services.partnerships import advice

log = logging.getLogger(__name__)

_USER_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_SLACK_ENTITY = re.compile(r"<([@#!])([^>|]*)(?:\|([^>]*))?>|<(?:mailto:)?([^>|]*)(?:\|([^>]*))?>")


def plain_text(text: str | None) -> str:
    """Turn Slack-formatted command text back into what the person typed, as plain text.

    `<@U1|ana>` -> `@ana`, `<!channel>` -> `@channel`, `<#C1|x>` -> `#x`, links -> their label, and the
    &amp; &lt; &gt; entities -> characters. The result is escaped again wherever the bot shows it.
    """

    def repl(m: re.Match[str]) -> str:
        if m.group(1):
            sigil, target, label = m.group(1), m.group(2), m.group(3)
            if sigil == "!":
                return "@" + (label or target.split("^")[0])
            return ("@" if sigil == "@" else "#") + (label or target)
        return m.group(5) or m.group(4) or ""

    return html.unescape(_SLACK_ENTITY.sub(repl, text or "")).strip()


def user_id_from_mention(token: str) -> str | None:
    m = _USER_MENTION.match(token.strip())
    return m.group(1) if m else None


class Reply:
    """Answers the person who acted: in the ack while open, then via response_url, else by DM."""

    def __init__(
        self, *, ack: Callable[..., Any] | None, slack: SlackGateway, user_id: str, response_url: str | None = None
    ) -> None:
        self._ack = ack
        self.slack = slack
        self.user_id = user_id
        self.response_url = response_url

    @property
    def acked(self) -> bool:
        return self._ack is None

    def ack(self, text: str | None = None, blocks: list[dict[str, Any]] | None = None) -> None:
        if self._ack is None:
            return
        ack, self._ack = self._ack, None
        if text is None and blocks is None:
            ack()
        else:
            ack(text=text, blocks=blocks, response_type="ephemeral")

    def __call__(self, text: str, blocks: list[dict[str, Any]] | None = None, *, replace: bool = False) -> None:
        if self._ack is not None:
            self.ack(text, blocks)
            return
        if self.response_url and self.slack.respond(self.response_url, text=text, blocks=blocks,
                                                    replace_original=replace):
            return
        try:
            self.slack.post(self.user_id, text=text, blocks=blocks)
        except SlackError as exc:
            log.warning("could not tell %s privately: %s", self.user_id, exc.code)


@contextmanager
def guarded(reply: Reply, what: str) -> Iterator[None]:
    """Turn any failure of a request into a private message; log what is unexpected."""
    try:
        yield
    except UserError as exc:
        reply(f":warning: {exc}")
    except SlackError as exc:
        log.warning("%s failed on Slack: %s", what, exc)
        reply(f":warning: Slack refused to {what} (`{exc.code}`). {advice(exc.code)}")
    except Exception:
        ref = uuid.uuid4().hex[:8]
        log.exception("unexpected failure while trying to %s (ref %s)", what, ref)
        reply(
            f":x: Something went wrong on our side while trying to {what}, and it was not completed. "
            f"Please try again; if it keeps failing, give your admin this reference: `{ref}`."
        )
    finally:
        reply.ack()
