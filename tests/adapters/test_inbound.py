"""The gate in front of Bolt: Slack's signature on the raw bytes, and what a Slack request must look like.
(The real endpoint under a fuzz of bad requests: tests/e2e/test_http_edge.py.)"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_bolt import App

from adapters.inbound import MAX_BODY_BYTES, SlackRequestGate, check_payload
from adapters.web import make_wsgi_app
from tests.support.clock import FrozenClock

SECRET = "unit-signing-secret"
NOW = datetime(2026, 3, 9, 9, 30, tzinfo=UTC)
FORM, JSON = "application/x-www-form-urlencoded", "application/json"


def sign(body: bytes, timestamp: str) -> str:
    return "v0=" + hmac.new(SECRET.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()


def test_a_signature_counts_for_five_minutes_either_way() -> None:
    clock = FrozenClock(NOW)
    gate = SlackRequestGate(SECRET, clock=clock)
    body = b'{"type": "url_verification", "challenge": "c"}'
    ts = str(int(NOW.timestamp()))
    for skew in (-300, 0, 300):
        clock.set(NOW + timedelta(seconds=skew))
        assert gate.signed(body, ts, sign(body, ts)), skew
    for skew in (-301, 301):
        clock.set(NOW + timedelta(seconds=skew))
        assert not gate.signed(body, ts, sign(body, ts)), skew
        assert gate.check(body, timestamp=ts, signature=sign(body, ts), content_type=JSON).status == 401


@pytest.mark.parametrize(("timestamp", "signature"), [
    (None, "v0=0"), ("TS", None), ("abc", "v0=0"), ("1.7e9", "v0=0"), ("", "v0=0"), ("TS", "v0=ü"), ("TS", ""),
])
def test_garbled_signature_headers_are_401_not_an_error(timestamp: str | None, signature: str | None) -> None:
    gate = SlackRequestGate(SECRET, clock=FrozenClock(NOW))
    ts = str(int(NOW.timestamp()))
    rejection = gate.check(b"{}", timestamp=ts if timestamp == "TS" else timestamp, signature=signature,
                           content_type=JSON)
    assert rejection is not None and rejection.status == 401


def test_a_signed_body_that_is_not_utf8_is_400_and_an_unsigned_one_401() -> None:
    gate = SlackRequestGate(SECRET, clock=FrozenClock(NOW))
    ts = str(int(NOW.timestamp()))
    body = "command=/partner&text=café".encode("latin-1")
    assert gate.check(body, timestamp=ts, signature=sign(body, ts), content_type=FORM).status == 400
    assert gate.check(body, timestamp=ts, signature="v0=" + "0" * 64, content_type=FORM).status == 401


def interactive(payload: dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


BUTTON = {"type": "block_actions", "user": {"id": "U1"}, "team": {"id": "T1"}, "trigger_id": "1.2",
          "actions": [{"action_id": "a", "block_id": "b", "value": "v"}],
          "response_url": "https://hooks.slack.com/actions/T1/2/x"}
VIEW = {"id": "V1", "type": "modal", "callback_id": "cb", "private_metadata": '{"round": "r"}',
        "state": {"values": {"b": {"a": {"type": "plain_text_input", "value": "typed"}}}}}


@pytest.mark.parametrize(("body", "content_type", "refused"), [
    (interactive(BUTTON), FORM, None),
    (interactive({"type": "view_submission", "user": {"id": "U1"}, "view": VIEW}), FORM, None),
    (b"ssl_check=1&token=t", FORM, None),
    (interactive({**BUTTON, "actions": []}), FORM, "`actions`"),
    (interactive({**BUTTON, "actions": [{"action_id": 7}]}), FORM, "`actions`"),
    (interactive({**BUTTON, "response_url": "javascript:alert(1)"}), FORM, "`response_url`"),
    (interactive({**BUTTON, "event": None}), FORM, "`event`"),  # Bolt reads body.get("event", {}).get(...)
    (interactive({**BUTTON, "response_urls": "x"}), FORM, "`response_urls`"),
    (interactive({"type": "view_submission", "user": {"id": "U1"}, "view": {**VIEW, "private_metadata": 7}}),
     FORM, "`view`"),
    (interactive({"type": "view_submission", "user": {"id": "U1"}, "view": {
        **VIEW, "state": {"values": {"b": {"a": {"selected_option": "x"}}}}}}), FORM, "`view`"),
    (interactive({"type": "view_submission", "user": {"id": "U1"}, "view": {**VIEW, "type": None}}), FORM, "`view`"),
    (interactive({"type": "interactive_message", "callback_id": "c", "actions": [{"value": "v"}]}), FORM,
     "not a kind"),
    (b'{"type": "event_callback", "event": {"type": "app_home_opened", "user": "U1", "tab": "home"}, '
     b'"authorizations": [{"team_id": 5, "enterprise": 5}]}', JSON, "`authorizations`"),
    (b'{"type": "event_callback", "event": {"type": "member_joined_channel", "user": "U1", "channel": "C1", '
     b'"inviter": "U2"}}', JSON, None),
    (b'{"type": "event_callback", "event": {"type": "member_joined_channel", "channel": "C1"}}', JSON,
     "malformed member_joined_channel request: `user`"),  # the listener reads event["user"]
    (b'{"type": "event_callback", "event": {"type": "member_left_channel", "user": "U1", "channel": {"id": "C1"}}}',
     JSON, "malformed member_left_channel request: `channel`"),
    (b'{"type": "url_verification", "challenge": "\\udc00"}', JSON, "not valid Unicode"),
    (b'{"type": "url_verification", "challenge": "c", "x": ' + b"[" * 64 + b"]" * 64 + b"}", JSON, "nested deeper"),
    (interactive(BUTTON)[:-3], FORM, "does not parse"),
    (urlencode({"payload": "[1, 2]"}).encode(), FORM, "not a JSON object"),
    (b"", FORM, "not a kind"),
])
def test_payload_shapes(body: bytes, content_type: str, refused: str | None) -> None:
    rejection = check_payload(body, content_type)
    if refused is None:
        assert rejection is None
    else:
        assert rejection is not None and rejection.status == 400 and refused in rejection.reason


class _Unreadable(io.RawIOBase):
    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the body was read")


@pytest.fixture
def wsgi() -> Any:
    app = App(token="xoxb-unit", token_verification_enabled=False, request_verification_enabled=False)
    return make_wsgi_app(app, lambda: (True, {}), signing_secret=SECRET)


def call(wsgi: Any, method: str, length: str) -> tuple[str, dict[str, Any]]:
    started: list[str] = []
    environ = {"REQUEST_METHOD": method, "PATH_INFO": "/slack/events", "CONTENT_LENGTH": length,
               "CONTENT_TYPE": FORM, "wsgi.input": _Unreadable()}
    body = b"".join(wsgi(environ, lambda status, headers: started.append(status)))
    return started[0], json.loads(body)


def test_a_declared_body_over_the_cap_is_413_without_reading_it_whatever_the_server(wsgi: Any) -> None:
    status, answer = call(wsgi, "POST", str(MAX_BODY_BYTES + 1))
    assert status.startswith("413") and "larger than 1048576 bytes" in answer["error"]
    assert call(wsgi, "POST", "12abc")[0].startswith("400")
    assert call(wsgi, "GET", "0")[0].startswith("405")
