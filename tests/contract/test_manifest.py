"""manifest.yml grants every scope the code needs; CI-only checks against Slack's published docs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from adapters.slack import FIELD_SCOPES, METHOD_SCOPES
from handlers.commands import COMMAND

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "slack-api"
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text())
BOT_SCOPES = set(MANIFEST["oauth_config"]["scopes"]["bot"])
CODE_DIRS = ["adapters", "services", "handlers", "jobs", "blocks", "models", "config"]


def _source() -> str:
    files = [ROOT / "bot.py"] + [p for d in CODE_DIRS for p in (ROOT / d).rglob("*.py")]
    return "\n".join(p.read_text() for p in files)


def test_every_called_method_is_declared_and_its_scopes_granted() -> None:
    called = set(re.findall(r'(?:_call|_pages)\(\s*"([a-z]+\.[A-Za-z.]+)"', _source()))
    assert called, "no Web API calls found: the pattern no longer matches adapters/slack.py"
    assert called <= set(METHOD_SCOPES), f"undeclared methods: {called - set(METHOD_SCOPES)}"
    missing = {m: s for m in called for s in METHOD_SCOPES[m] if s not in BOT_SCOPES}
    assert not missing, f"manifest.yml lacks scopes: {missing}"


def test_scopes_that_show_more_of_an_answer_are_granted() -> None:
    # users.info answers without profile.email unless users:read.email is granted: partner contacts joining
    # would then never match their Slack Connect invitation, silently.
    missing = {m: s for m, scopes in FIELD_SCOPES.items() for s in scopes if s not in BOT_SCOPES}
    assert not missing, f"manifest.yml lacks scopes: {missing}"


def test_web_api_is_only_called_through_the_gateway() -> None:
    outside = [p for d in CODE_DIRS if d != "adapters" for p in (ROOT / d).rglob("*.py")]
    offenders = [str(p.relative_to(ROOT)) for p in outside
                 if re.search(r"\bclient\.(api_call|chat_|conversations_|views_|users_|pins_)", p.read_text())]
    assert offenders == []


def test_manifest_declares_command_events_home_and_interactivity() -> None:
    commands = {c["command"]: c for c in MANIFEST["features"]["slash_commands"]}
    assert COMMAND in commands and commands[COMMAND]["should_escape"] is True
    assert "commands" in BOT_SCOPES
    assert MANIFEST["features"]["app_home"]["home_tab_enabled"] is True
    assert "app_home_opened" in MANIFEST["settings"]["event_subscriptions"]["bot_events"]
    assert MANIFEST["settings"]["interactivity"]["is_enabled"] is True


needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/slack-api is not beside the project")


@needs_shared
def test_manifest_validates_against_slacks_schema() -> None:
    import jsonschema

    schema = json.loads((SHARED / "manifest-schema" / "manifest.schema.1.0.0.json").read_text())
    jsonschema.validate(MANIFEST, schema)


@needs_shared
def test_declared_scopes_are_ones_slack_accepts_for_each_method() -> None:
    for method, scopes in METHOD_SCOPES.items():
        doc = json.loads((SHARED / "docs-slack-dev" / "methods" / f"{method}.json").read_text())
        accepted = set((doc.get("scope") or {}).get("bot") or [])
        for scope in scopes:
            assert not accepted or scope in accepted, f"{method}: Slack does not list {scope} ({accepted})"


# Events Slack documents (docs.slack.dev/reference/events/<name>) that the stored events.json lacks, with the
# scopes their pages name.
NOT_IN_STORED_LIST = {
    "channel_archive": {"name": "channel_archive", "scopes": ["channels:read"]},
    "channel_unarchive": {"name": "channel_unarchive", "scopes": ["channels:read"]},
    "group_archive": {"name": "group_archive", "scopes": ["groups:read"]},
    "group_unarchive": {"name": "group_unarchive", "scopes": ["groups:read"]},
}


@needs_shared
def test_bot_events_need_no_scope_we_lack() -> None:
    events = json.loads((SHARED / "docs-slack-dev" / "events" / "events.json").read_text())
    by_name = {e.get("name"): e for e in (events if isinstance(events, list) else events.get("events", []))}
    by_name = {**NOT_IN_STORED_LIST, **by_name}
    for name in MANIFEST["settings"]["event_subscriptions"]["bot_events"]:
        assert name in by_name, f"unknown event {name}"
        needed = set(by_name[name].get("scopes") or [])
        assert not needed or needed & BOT_SCOPES, f"{name} needs one of {needed}"
