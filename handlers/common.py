"""What every listener shares: reading Slack's text formats, and answering the person privately.

`Reply` answers through the HTTP ack while the request is still open, and through the response_url
(or a DM) afterwards; for a submitted form, a refusal before the ack becomes errors under its inputs.
`guarded` is the one boundary where failures become private messages or form errors: whatever fails,
even before the ack (the database is down), Slack never shows its generic "something went wrong".
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.slack import SlackError, SlackGateway
from blocks.text import escape, truncate
from services.errors import Invalid, UserError
from services.inputs import slack_plain
from services.partnerships import advice

log = logging.getLogger(__name__)

_USER_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
def plain_text(text: str | None) -> str:
    """Turn Slack-formatted command text back into what the person typed, as plain text.

    `<@U1|ana>` -> `@ana`, `<!channel>` -> `@channel`, `<#C1|x>` -> `#x`, an address Slack linked -> the address
    as typed, and the &amp; &lt; &gt; entities -> characters (services.inputs.slack_plain). The result is escaped
    again wherever the bot shows it.
    """
    return slack_plain(text)


def echo(raw: str | None, limit: int = 40) -> str:
    """What the person typed, to quote back in mrkdwn: Slack's formatting undone, cut, escaped (so a
    `<!here>` or a link they typed shows as text)."""
    return escape(truncate(plain_text(raw), limit))


_EVENT_TS = re.compile(r"^(\d{1,12})(?:\.(\d{1,6}))?$")


def event_time(event: Mapping[str, Any], body: Mapping[str, Any]) -> datetime | None:
    """When an event happened, as Slack says: the event's `event_ts` ("1599616881.000200", read exactly, without
    going through a float), else the envelope's `event_time` (whole seconds); None when neither is there. A
    retried delivery carries the same values as the first."""
    m = _EVENT_TS.match(str(event.get("event_ts") or ""))
    if m:
        micros = int((m.group(2) or "0").ljust(6, "0"))
        return datetime.fromtimestamp(int(m.group(1)), UTC) + timedelta(microseconds=micros)
    seconds = body.get("event_time")
    if isinstance(seconds, int) and not isinstance(seconds, bool) and 0 <= seconds < 10**12:
        return datetime.fromtimestamp(seconds, UTC)
    return None


def retry_num(headers: Mapping[str, Any] | None) -> int:
    """How often Slack has delivered this request before (its X-Slack-Retry-Num header; 0 for the first)."""
    raw = (headers or {}).get("x-slack-retry-num")
    value = raw[0] if isinstance(raw, (list, tuple)) and raw else raw
    return int(value) if isinstance(value, str) and value.isdigit() else 0


def user_id_from_mention(token: str) -> str | None:
    m = _USER_MENTION.match(token.strip())
    return m.group(1) if m else None


def after_ack(pool: Executor, work: Callable[[], None]) -> None:
    """Do the rest of a listener's work on `pool` (Services.after_ack: HTTP_THREADS // 2 threads, at least 2; few,
    so that the work competes little with the acks for the interpreter) once it has acked. Bolt runs every
    listener, and so every ack, on one thread pool: a listener that keeps its thread through database writes and
    Slack calls makes the next requests' acks wait behind it (a vote storm). `work` answers its own errors
    (`guarded`); anything that still escapes is logged rather than lost in a Future."""

    def run() -> None:
        try:
            work()
        except Exception:
            log.exception("work after an ack failed")

    pool.submit(run)


def view_metadata(view: dict[str, Any]) -> dict[str, Any]:
    """The `private_metadata` a modal was opened with (a JSON object; empty when there is none)."""
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def view_values(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A submitted form's inputs by block id: what each input holds (`value`, `selected_date`,
    `selected_users`, …). Every input's action id is its block id, so one level is enough."""
    values = view.get("state", {}).get("values", {})
    return {block: (fields.get(block) or {}) for block, fields in values.items()}


def under_inputs(exc: Invalid, inputs: Mapping[str, str]) -> Invalid:
    """The same refusal with each field's problem keyed by the form input that shows it (`inputs`: a field
    of the input model -> its block id; fields without one keep their name)."""
    return Invalid(str(exc), {inputs.get(k, k): m for k, m in exc.fields.items()})


FORM_ERROR_MAX = 150  # an error shown under a form input is cut to this many characters


def form_errors(
    message: str, fields: Mapping[str, str], view: dict[str, Any], default_field: str
) -> dict[str, str]:
    """Slack's `response_action: errors` for a refused form: each field's problem under its input (under
    `default_field` when the form has no such input), or the whole message there; plain text, each cut to
    FORM_ERROR_MAX characters. Every feature's forms answer through this (by `guarded`)."""
    inputs = {b.get("block_id") for b in view.get("blocks") or []}
    errors: dict[str, str] = {}
    for name, problem in fields.items():
        key = name if name in inputs else default_field
        errors[key] = f"{errors[key]} {problem}" if key in errors else problem
    if not errors:
        errors[default_field] = plain_text(message)
    return {key: truncate(problem, FORM_ERROR_MAX) for key, problem in errors.items()}


class Reply:
    """Answers the person who acted: in the ack while open, then via response_url, else by DM.

    A submitted form (`form`: the view) is answered with an empty ack, which closes it, or with errors
    under its inputs (`refuse` before the ack; `form_field` takes what belongs to no input)."""

    def __init__(
        self, *, ack: Callable[..., Any] | None, slack: SlackGateway, user_id: str, response_url: str | None = None,
        form: dict[str, Any] | None = None, form_field: str = "",
    ) -> None:
        self._ack = ack
        self.slack = slack
        self.user_id = user_id
        self.response_url = response_url
        self.form = form
        self.form_field = form_field

    @classmethod
    def to_form(cls, ack: Callable[..., Any], slack: SlackGateway, body: dict[str, Any], *, field: str) -> Reply:
        """For a view submission; later messages go to the response_url the form was opened from, else a DM."""
        view = body.get("view") or {}
        return cls(ack=ack, slack=slack, user_id=(body.get("user") or {}).get("id", ""),
                   response_url=view_metadata(view).get("response_url"), form=view, form_field=field)

    @classmethod
    def to_action(cls, slack: SlackGateway, body: dict[str, Any]) -> Reply:
        """For a click the listener has already acked: through the click's response_url, else a DM."""
        return cls(ack=None, slack=slack, user_id=(body.get("user") or {}).get("id", ""),
                   response_url=body.get("response_url"))

    def ack(self, text: str | None = None, blocks: list[dict[str, Any]] | None = None) -> None:
        """Answer Slack's request once: a command with this private message (if any); a form closes."""
        if self._ack is None:
            return
        ack, self._ack = self._ack, None
        if self.form is not None or (text is None and blocks is None):
            ack()
        else:
            ack(text=text, blocks=blocks, response_type="ephemeral")

    def refuse(self, text: str, fields: Mapping[str, str] | None = None, *, icon: str = ":warning:") -> None:
        """Say why the request was not done: under the form's inputs while the submitted form waits for
        its answer, else privately as a message."""
        if self._ack is not None and self.form is not None:
            ack, self._ack = self._ack, None
            ack(response_action="errors", errors=form_errors(text, fields or {}, self.form, self.form_field))
            return
        self(f"{icon} {text}")

    def __call__(self, text: str, blocks: list[dict[str, Any]] | None = None, *, replace: bool = False) -> None:
        if self._ack is not None and self.form is None:
            self.ack(text, blocks)
            return
        self.ack()  # a form closes first; the message goes where the person sees it
        if self.response_url and self.slack.respond(self.response_url, text=text, blocks=blocks,
                                                    replace_original=replace):
            return
        try:
            # Keyed: a direct message whose answer is lost is found, not sent twice.
            self.slack.post(self.user_id, text=text, blocks=blocks, key=f"reply:{uuid.uuid4().hex}")
        except SlackError as exc:
            log.warning("could not tell %s privately: %s", self.user_id, exc.code)


@contextmanager
def guarded(reply: Reply, what: str) -> Iterator[None]:
    """Turn any failure of a request into a private message or form errors; log what is unexpected.
    Wrap all a listener does after building its Reply, so that a failure before the ack is answered too."""
    try:
        yield
    except UserError as exc:
        reply.refuse(str(exc), exc.fields if isinstance(exc, Invalid) else None)
    except SlackError as exc:
        log.warning("%s failed on Slack: %s", what, exc)
        reply.refuse(f"Slack refused to {what} (`{exc.code}`). {advice(exc.code)}")
    except Exception:
        ref = uuid.uuid4().hex[:8]
        log.exception("unexpected failure while trying to %s (ref %s)", what, ref)
        # Short enough for a form error, reference included.
        reply.refuse(f"Could not {what}: a problem on our side. Try again in a minute; if it keeps failing, "
                     f"tell your admin `{ref}`.", icon=":x:")
    finally:
        reply.ack()
