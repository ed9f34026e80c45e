"""CI-only: the HTTP edge takes every example payload Slack publishes, encoded the way Slack sends it."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

import pytest

from adapters.inbound import check_payload

PAYLOADS = Path(__file__).resolve().parents[2].parent / "shared" / "slack-payloads"
EXAMPLES = sorted(p.name for p in PAYLOADS.glob("*.json") if p.name != "socket_mode_envelopes.json")


@pytest.mark.skipif(not PAYLOADS.is_dir(), reason="../shared/slack-payloads is not beside the project")
@pytest.mark.parametrize("name", EXAMPLES or ["none"])
def test_slacks_example_payloads_pass_the_edge(name: str) -> None:
    payload = json.loads((PAYLOADS / name).read_text())
    if "command" in payload:  # slash commands: flat form fields
        body, content_type = urlencode(payload).encode(), "application/x-www-form-urlencoded"
    elif payload.get("type") in ("event_callback", "url_verification"):  # the Events API: JSON
        body, content_type = json.dumps(payload).encode(), "application/json"
    else:  # interactivity: one form field, payload=<JSON>
        body, content_type = urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded"
    assert check_payload(body, content_type) is None


@pytest.mark.skipif(not PAYLOADS.is_dir(), reason="../shared/slack-payloads is not beside the project")
def test_slacks_raw_slash_command_body_passes_the_edge() -> None:
    body = (PAYLOADS / "slash_command.form.txt").read_bytes().strip()
    assert check_payload(body, "application/x-www-form-urlencoded") is None
