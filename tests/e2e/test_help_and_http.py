"""The HTTP endpoint: signatures, health, help."""

from __future__ import annotations

import json
import time
import urllib.request
from urllib.parse import urlencode

from tests.e2e.conftest import Harness

SUBCOMMANDS = ["help", "new", "info", "list", "add", "remove", "invite", "close", "checkin", "checkin setup",
               "checkin schedule", "checkin now", "checkin pause", "checkin skip", "checkin questions",
               "checkin history", "away", "back", "pulse", "pulse setup", "pulse now", "pulse pause",
               "milestone add", "milestone done", "milestone reschedule", "milestone cancel", "milestone reopen",
               "milestones", "kudos", "values", "wins", "poll", 'poll "', "poll list", "poll close",
               "poll export", "issue API", "issue 7", "issue sla", "issues mine", "issues stats"]


def test_help_lists_every_subcommand_with_an_example(h: Harness) -> None:
    said = h.command("help")
    assert said.status == 200
    for sub in SUBCOMMANDS:
        assert f"`/partner {sub}" in said.text, sub
        assert f"e.g. `/partner {sub}" in said.text, sub
    assert said.text.count("e.g. `/partner") == len(SUBCOMMANDS)


def test_unknown_or_empty_subcommand_answers_with_help(h: Harness) -> None:
    said = h.command("frobnicate now")
    assert "`frobnicate` is not a Partnerbot command" in said.text
    assert "`/partner new [name]`" in said.text
    assert "`/partner close [reason]`" in h.command("").text


def test_bad_or_stale_signature_gets_401_and_does_nothing(h: Harness) -> None:
    body = urlencode({"command": "/partner", "text": "new Sneaky", "user_id": "UALICE", "channel_id": h.general,
                      "team_id": "T0OURS", "trigger_id": "t", "response_url": h.fake.new_response_url()}).encode()
    status, _ = h.sender.raw(body, "application/x-www-form-urlencoded", signature="v0=" + "0" * 64)
    assert status == 401
    status, _ = h.sender.raw(body, "application/x-www-form-urlencoded", timestamp=str(int(time.time()) - 301))
    assert status == 401
    h.wait()
    assert h.fake.channel_by_name("partner-sneaky") is None


def test_healthz_reports_the_database(h: Harness) -> None:
    with urllib.request.urlopen(f"{h.server.url}/healthz", timeout=5) as resp:
        assert resp.status == 200
        assert json.loads(resp.read())["database"] == "ok"
