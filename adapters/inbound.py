"""What Partnerbot accepts from Slack over HTTP, checked on the raw bytes before Bolt sees a request.

In order: the body is at most `MAX_BODY_BYTES` (else 413); it carries a valid, fresh Slack signature
(else 401); it is UTF-8 and parses, the way Bolt will parse it, into a JSON object of a kind Slack
sends, with the fields Bolt's dispatch and Partnerbot's listeners read present and of the right type
(else 400). Bolt indexes payloads without looking (`body["actions"][0]["action_id"]`,
`body.get("event", {}).get(...)`, ...), and so do the listeners (`body["user"]["id"]`): a signed but
malformed request would otherwise end in a 500 with a traceback. A rejection's reason names a field
of the shapes below, never anything from the body, so it is safe to log and to send back.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr, ValidationError
from slack_bolt.request.internals import parse_body

from adapters.clock import Clock, SystemClock

MAX_BODY_BYTES = 1 << 20  # 1 MiB: Slack's largest payloads (a modal's state, a message) are far smaller
SIGNATURE_MAX_AGE = 300  # seconds either way, as Slack documents and slack_sdk's SignatureVerifier checks
TIMESTAMP_DIGITS_MAX = 12  # Unix seconds have 10 digits until the year 2286
MAX_DEPTH = 64  # nesting of JSON arrays and objects; Slack's payloads stay well under 20


@dataclass(frozen=True)
class Rejection:
    status: int  # 400, 401 or 413
    reason: str  # never contains anything from the request


TOO_LARGE = Rejection(413, f"the body is larger than {MAX_BODY_BYTES} bytes")


# -- shapes ------------------------------------------------------------------------------------------------------
def _web_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("not an http(s) URL")
    return value


Id = Annotated[StrictStr, Field(min_length=1)]
Url = Annotated[StrictStr, AfterValidator(_web_url)]


class _Shape(BaseModel):
    """A JSON object; fields not declared are allowed and left alone."""

    model_config = ConfigDict(extra="allow")


class _ResponseUrl(_Shape):
    response_url: Url


class _Context(_Shape):
    """What Bolt reads from any request, and from its `event` and `authorizations`, to build the
    listener's context (slack_bolt.request.internals.build_context) and in its built-in middleware.
    A field typed without `| None` but defaulting to None may be absent, never null: pydantic does not
    validate defaults."""

    enterprise: StrictStr | _Shape | None = None
    team: StrictStr | _Shape | None = None
    user: StrictStr | _Shape | None = None
    channel: StrictStr | _Shape | None = None
    authorizations: list[_Context] | None = None
    event: _Event = None  # type: ignore[assignment]
    message: _Context | None = None
    previous_message: _Context | None = None
    item: _Context | None = None
    assistant_thread: _Context | None = None
    view: _Shape = None  # type: ignore[assignment]
    response_url: Url | None = None
    response_urls: list[_ResponseUrl] = None  # type: ignore[assignment]


class _Event(_Context):
    type: StrictStr
    function: _Shape = None  # type: ignore[assignment]


_Context.model_rebuild()


class _Ref(_Shape):
    id: Id


class _Option(_Shape):
    value: StrictStr


class _InputState(_Shape):
    """One input's value in a view's state, as the listeners read it."""

    value: StrictStr | None = None
    selected_option: _Option | None = None
    selected_options: list[_Option] | None = None
    selected_users: list[StrictStr] | None = None
    selected_user: StrictStr | None = None
    selected_date: StrictStr | None = None
    selected_time: StrictStr | None = None


class _ViewState(_Shape):
    values: dict[str, dict[str, _InputState]] = {}


class _View(_Shape):
    id: Id
    type: StrictStr
    callback_id: StrictStr = ""
    private_metadata: StrictStr = ""
    state: _ViewState = _ViewState()


class _Action(_Shape):
    action_id: StrictStr
    block_id: StrictStr | None = None
    value: StrictStr | None = None
    selected_option: _Option | None = None


class SlashCommand(_Context):
    command: Annotated[StrictStr, Field(pattern=r"^/")]
    text: StrictStr = ""
    user_id: Id
    channel_id: Id
    team_id: Id
    trigger_id: Id
    response_url: Url


class SslCheck(_Context):
    ssl_check: Literal["1"]


class _Interactive(_Context):
    user: _Ref
    team: _Ref | None = None


class BlockActions(_Interactive):
    actions: Annotated[list[_Action], Field(min_length=1)]
    trigger_id: Id
    channel: _Ref | None = None
    view: _View = None  # type: ignore[assignment]


class BlockSuggestion(_Interactive):
    action_id: StrictStr
    value: StrictStr = ""


class ViewPayload(_Interactive):
    view: _View


class Shortcut(_Interactive):
    callback_id: StrictStr
    trigger_id: Id


class EventCallback(_Context):
    team_id: StrictStr | None = None
    event: _Event


class UrlVerification(_Context):
    challenge: StrictStr


class AppRateLimited(_Context):
    team_id: StrictStr


class AppHomeOpened(_Event):
    user: Id
    tab: StrictStr = "home"


class ChannelArchived(_Event):
    """channel_archive, channel_unarchive (with the user), group_archive, group_unarchive."""

    channel: Id
    user: Id | None = None


class ChannelMembership(_Event):
    """member_joined_channel (with the inviter, when someone added them), member_left_channel."""

    user: Id
    channel: Id
    inviter: StrictStr | None = None


# `type` -> shape. Legacy kinds (interactive_message, dialog_*, workflow steps) are refused: Partnerbot
# uses none of them.
_KINDS: dict[str, type[_Context]] = {
    "block_actions": BlockActions,
    "block_suggestion": BlockSuggestion,
    "view_submission": ViewPayload,
    "view_closed": ViewPayload,
    "shortcut": Shortcut,
    "message_action": Shortcut,
    "event_callback": EventCallback,
    "url_verification": UrlVerification,
    "app_rate_limited": AppRateLimited,
}
# Events whose listeners read more than every event has: event type -> shape of `event`.
_EVENTS: dict[str, type[_Event]] = {
    "app_home_opened": AppHomeOpened,
    **dict.fromkeys(("channel_archive", "channel_unarchive", "group_archive", "group_unarchive"), ChannelArchived),
    **dict.fromkeys(("member_joined_channel", "member_left_channel"), ChannelMembership),
}


# -- the gate ----------------------------------------------------------------------------------------------------
class SlackRequestGate:
    """Checks one request to the Slack endpoint; `check` returns None when Bolt may have it."""

    def __init__(self, signing_secret: str, *, clock: Clock | None = None) -> None:
        if not signing_secret.strip():
            raise ValueError("a signing secret is required to serve Slack's requests over HTTP")
        self._secret = signing_secret.encode()
        self._clock = clock or SystemClock()

    def check(self, body: bytes, *, timestamp: str | None, signature: str | None,
              content_type: str | None) -> Rejection | None:
        if len(body) > MAX_BODY_BYTES:
            return TOO_LARGE
        if not self.signed(body, timestamp, signature):
            return Rejection(401, "invalid request")  # what Bolt answers: no hint which part is wrong
        return check_payload(body, content_type)

    def signed(self, body: bytes, timestamp: str | None, signature: str | None) -> bool:
        """Slack's v0 signature: HMAC-SHA256 of `v0:<timestamp>:<raw body>`, the timestamp within
        5 minutes. Computed on the bytes (slack_sdk's SignatureVerifier decodes the body as UTF-8 first
        and raises on anything else, as it does on a timestamp that is not a number)."""
        if not timestamp or not signature or not (timestamp.isascii() and timestamp.isdigit()):
            return False
        if len(timestamp) > TIMESTAMP_DIGITS_MAX:  # int() refuses 4,300 digits, float() overflows at 309
            return False
        if abs(self._clock.now().timestamp() - int(timestamp)) > SIGNATURE_MAX_AGE:
            return False
        digest = hmac.new(self._secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(f"v0={digest}".encode(), signature.encode("utf-8", "replace"))


def bolt_body(body: bytes, content_type: str | None) -> bytes:
    """The body to hand to Bolt: the same request, read by Bolt as Slack meant it.

    Bolt reads a form body that contains the word "payload" anywhere as an interaction (`payload=<JSON>`),
    and a form without that field as `{}`: a slash command whose text, channel or user name says
    "payload" (`/partner new Payload Systems`) would be lost. Such a body gets the letter p of each
    "payload" percent-encoded (`%70`), which decodes to the very same fields. Called after the signature
    check, on the bytes Slack signed."""
    if b"payload" not in body or body.lstrip().startswith(b"{") or "json" in (content_type or "").lower():
        return body
    if any(field == "payload" for field, _ in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)):
        return body  # an interaction: Bolt reads its payload field
    return body.replace(b"payload", b"%70ayload")


def check_payload(body: bytes, content_type: str | None) -> Rejection | None:
    """400 unless the body is a Slack request of a kind Partnerbot takes, in the shape it expects."""
    body = bolt_body(body, content_type)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Rejection(400, "the body is not UTF-8")
    try:
        # Exactly as Bolt will parse it (form fields, `payload=<JSON>`, or JSON), so that what is
        # checked here is what Bolt dispatches.
        payload = parse_body(text, (content_type or "").split(";")[0] or None)
    except (ValueError, RecursionError):
        return Rejection(400, "the body does not parse as a Slack request (form fields or JSON)")
    if not isinstance(payload, dict):
        return Rejection(400, "the payload is not a JSON object")
    problem = _walk(payload)
    if problem:
        return Rejection(400, problem)
    if "ssl_check" in payload:
        kind, shape = "ssl_check", SslCheck
    elif "command" in payload:
        kind, shape = "slash command", SlashCommand
    elif isinstance(payload.get("type"), str) and payload["type"] in _KINDS:
        kind, shape = payload["type"], _KINDS[payload["type"]]
    else:
        return Rejection(400, "not a kind of Slack request Partnerbot takes")
    try:
        parsed = shape.model_validate(payload)
        event_shape = _EVENTS.get(parsed.event.type) if isinstance(parsed, EventCallback) else None
        if event_shape is not None:
            kind = parsed.event.type
            event_shape.model_validate(payload["event"])
    except ValidationError as exc:
        field = next((str(e["loc"][0]) for e in exc.errors() if e["loc"]), "")
        return Rejection(400, f"malformed {kind} request: `{field}` is missing or of the wrong type" if field
                         else f"malformed {kind} request")
    return None


def _walk(payload: dict[str, Any]) -> str | None:
    """Slack's JSON is valid Unicode and shallow: refuse lone surrogates (`"\\ud800"`, which no database
    or encoder downstream accepts) and deep nesting (Bolt parses the body again, deeper in the call
    stack, where a RecursionError would be a 500)."""
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"the payload is nested deeper than {MAX_DEPTH} levels"
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            for text in (key, item):
                if isinstance(text, str) and not _encodable(text):
                    return "the payload holds text that is not valid Unicode"
            if isinstance(item, (dict, list)):
                stack.append((item, depth + 1))
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

