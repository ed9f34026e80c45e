"""Sends requests to the app the way Slack does: form-encoded slash commands and interactivity
payloads, JSON events, each signed with the signing secret (X-Slack-Signature over the raw body)."""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from tests.fakes.slack import FakeSlack


class SlackSender:
    def __init__(self, *, app_url: str, signing_secret: str, fake: FakeSlack, team_id: str) -> None:
        self.app_url = app_url
        self.verifier = SignatureVerifier(signing_secret)
        self.fake = fake
        self.team_id = team_id
        self.last_response_url: str | None = None
        self.last_trigger_id: str | None = None
        self.last_event_body: bytes | None = None
        self._event_ids = itertools.count(1)

    # -- raw -----------------------------------------------------------------------------------------
    def raw(
        self, body: bytes, content_type: str, *, signature: str | None = None, timestamp: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        ts = timestamp or str(int(time.time()))
        sig = signature or self.verifier.generate_signature(timestamp=ts, body=body.decode("utf-8"))
        request = urllib.request.Request(self.app_url, data=body, method="POST", headers={
            "Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig,
            **(headers or {}),
        })
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status, _parse(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, _parse(err.read())

    def _form(self, fields: dict[str, Any]) -> tuple[int, Any]:
        return self.raw(urlencode(fields).encode(), "application/x-www-form-urlencoded")

    def _interactive(self, payload: dict[str, Any]) -> tuple[int, Any]:
        return self._form({"payload": json.dumps(payload)})

    def _user(self, user_id: str) -> dict[str, Any]:
        user = self.fake.users.get(user_id, {})
        return {"id": user_id, "username": user.get("name", user_id), "name": user.get("name", user_id),
                "team_id": user.get("team_id", self.team_id)}

    # -- what people do ---------------------------------------------------------------------------------
    def command(self, command: str, text: str, *, user_id: str, channel_id: str) -> tuple[int, Any]:
        self.last_response_url = self.fake.new_response_url()
        self.last_trigger_id = self.fake.issue_trigger(user_id)
        channel = self.fake.channels.get(channel_id)
        return self._form({
            "token": "legacy-verification-token", "team_id": self.team_id, "team_domain": "ours",
            "channel_id": channel_id, "channel_name": channel.name if channel else "directmessage",
            "user_id": user_id, "user_name": self.fake.users.get(user_id, {}).get("name", user_id),
            "command": command, "text": text, "api_app_id": "A0PARTNERBOT", "is_enterprise_install": "false",
            "response_url": self.last_response_url, "trigger_id": self.last_trigger_id,
        })

    def block_action(
        self, action_id: str, value: str | None = None, *, user_id: str, channel_id: str | None = None,
        response_url: str | None = None, view: dict[str, Any] | None = None, message: dict[str, Any] | None = None,
        block_id: str = "actions", action_type: str = "button", extra: dict[str, Any] | None = None,
    ) -> tuple[int, Any]:
        """A click on an interactive element in a message (`message`/`channel_id`) or a view (`view`)."""
        self.last_trigger_id = self.fake.issue_trigger(user_id)
        action: dict[str, Any] = {"action_id": action_id, "block_id": block_id, "type": action_type,
                                  "action_ts": f"{time.time():.6f}", **(extra or {})}
        if value is not None:
            action["value"] = value
        payload: dict[str, Any] = {
            "type": "block_actions", "team": {"id": self.team_id, "domain": "ours"}, "user": self._user(user_id),
            "api_app_id": "A0PARTNERBOT", "token": "legacy-verification-token",
            "trigger_id": self.last_trigger_id, "actions": [action], "is_enterprise_install": False,
        }
        if view is not None:
            payload["container"] = {"type": "view", "view_id": view.get("id")}
            payload["view"] = view
        else:
            ts = (message or {}).get("ts", f"{time.time():.6f}")
            payload["container"] = {"type": "message", "message_ts": ts, "channel_id": channel_id,
                                    "is_ephemeral": message is None}
            payload["channel"] = {"id": channel_id, "name": getattr(self.fake.channels.get(channel_id or ""),
                                                                    "name", "")}
            if message is not None:
                payload["message"] = message
            self.last_response_url = response_url or self.fake.new_response_url()
            payload["response_url"] = self.last_response_url
        return self._interactive(payload)

    def message_shortcut(self, callback_id: str, message: dict[str, Any], *, user_id: str,
                         channel_id: str) -> tuple[int, Any]:
        """A message shortcut chosen from a message's menu (Slack's `message_action` payload)."""
        self.last_trigger_id = self.fake.issue_trigger(user_id)
        self.last_response_url = self.fake.new_response_url()
        channel = self.fake.channels.get(channel_id)
        return self._interactive({
            "type": "message_action", "callback_id": callback_id, "team": {"id": self.team_id, "domain": "ours"},
            "user": self._user(user_id), "channel": {"id": channel_id, "name": channel.name if channel else ""},
            "message": {k: v for k, v in message.items() if k != "channel"}, "message_ts": message["ts"],
            "trigger_id": self.last_trigger_id, "response_url": self.last_response_url,
            "action_ts": f"{time.time():.6f}", "api_app_id": "A0PARTNERBOT", "token": "legacy-verification-token",
            "is_enterprise_install": False,
        })

    def submit_view(self, view: dict[str, Any], values: dict[str, Any], *, user_id: str) -> tuple[int, Any]:
        """Submit a modal the fake opened, with these input values (block_id -> action_id -> value)."""
        submitted = {**view, "state": {"values": values}}
        return self._interactive({
            "type": "view_submission", "team": {"id": self.team_id, "domain": "ours"}, "user": self._user(user_id),
            "api_app_id": "A0PARTNERBOT", "token": "legacy-verification-token",
            "trigger_id": self.fake.issue_trigger(user_id), "view": submitted, "response_urls": [],
            "is_enterprise_install": False,
        })

    def event(self, event: dict[str, Any], *, retry_num: int | None = None) -> tuple[int, Any]:
        body = {
            "token": "legacy-verification-token", "team_id": self.team_id, "api_app_id": "A0PARTNERBOT",
            "event": {"event_ts": f"{time.time():.6f}", **event}, "type": "event_callback",
            "event_id": f"Ev{next(self._event_ids):08d}", "event_time": int(time.time()),
            "authorizations": [{"enterprise_id": None, "team_id": self.team_id, "user_id": self.fake.bot_user_id,
                                "is_bot": True, "is_enterprise_install": False}],
            "is_ext_shared_channel": False,
        }
        headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"} if retry_num else None
        self.last_event_body = json.dumps(body).encode()
        return self.raw(self.last_event_body, "application/json", headers=headers)

    def redeliver(self, body: bytes | None = None, *, retry_num: int = 1,
                  reason: str = "http_timeout") -> tuple[int, Any]:
        """Slack delivering an event again, as it does when it thinks the first delivery failed: the same
        body (the last event sent, unless given), signed anew, with X-Slack-Retry-Num and -Reason."""
        body = body if body is not None else self.last_event_body
        assert body is not None, "no event was sent yet"
        return self.raw(body, "application/json",
                        headers={"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": reason})


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
