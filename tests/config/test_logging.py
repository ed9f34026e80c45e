"""What the bot's log (configure_logging) lets through when Bolt logs a request: nothing a person typed,
no response URL, no token; in Socket Mode as much as over HTTP."""

from __future__ import annotations

import io
import logging
import sys
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.middleware import RequestVerification

from config.logging import configure_logging

RESPONSE_URL = "https://hooks.slack.com/actions/T1/2/Zq9sEcReT"
TOKEN = "xoxb-1234-5678-SeCrEtToKeN"
TYPED = "what someone typed"


@pytest.fixture
def bot_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """What the bot writes to stderr after configure_logging; the logging set-up is put back afterwards."""
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    loggers = [logging.getLogger(name) for name in ("", "slack_sdk", "slack_bolt", "apscheduler")]
    saved = [(lg, lg.level, list(lg.handlers), list(lg.filters)) for lg in loggers]
    configure_logging("INFO")
    yield stream
    for lg, level, handlers, filters in saved:
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.filters[:] = filters


def assert_nothing_leaked(text: str) -> None:
    for secret in (RESPONSE_URL, "Zq9sEcReT", TOKEN, "SeCrEtToKeN", TYPED):
        assert secret not in text, text


def test_bolts_invalid_signature_message_keeps_no_body(bot_log: io.StringIO) -> None:
    # Partnerbot checks signatures before Bolt does; should Bolt's check ever run, its message is cut.
    body = urlencode({"command": "/partner", "text": f"{TYPED} {TOKEN}", "response_url": RESPONSE_URL})
    check = RequestVerification("secret", base_logger=logging.getLogger("slack_bolt"))
    request = BoltRequest(body=body, headers={"x-slack-request-timestamp": str(int(time.time())),
                                              "x-slack-signature": "v0=0"})
    assert check.process(req=request, resp=BoltResponse(status=200), next=lambda: None).status == 401
    text = bot_log.getvalue()
    assert "Invalid request signature detected (the request is not logged)" in text
    assert_nothing_leaked(text)


def test_an_unhandled_socket_mode_request_is_logged_by_kind_only(bot_log: io.StringIO) -> None:
    app = App(authorize=lambda **_: AuthorizeResult(enterprise_id=None, team_id="T1", bot_token="xoxb-bot",
                                                    bot_user_id="UBOT", bot_id="B1"),
              request_verification_enabled=False, logger=logging.getLogger("slack_bolt"))
    payload = {"type": "dialog_submission", "callback_id": "old_dialog", "user": {"id": "U1"}, "team": {"id": "T1"},
               "submission": {"comment": TYPED, "token": TOKEN}, "response_url": RESPONSE_URL}
    assert app.dispatch(BoltRequest(mode="socket_mode", body=payload)).status == 404
    text = bot_log.getvalue()
    assert "Unhandled request ({'type': 'dialog_submission', 'callback_id': 'old_dialog'})" in text
    assert_nothing_leaked(text)


def test_tokens_and_response_urls_are_masked_in_any_message(bot_log: io.StringIO) -> None:
    logging.getLogger("partnerbot").warning("replying to %s with %s failed", RESPONSE_URL, TOKEN)
    text = bot_log.getvalue()
    assert "replying to https://hooks.slack.com/[redacted] with xox*-[redacted] failed" in text
    assert_nothing_leaked(text)
