"""A stateful fake of the Slack Web API, served over loopback HTTP.

The real `slack_sdk.WebClient` talks to it through `SLACK_API_URL` (`FakeSlack.base_url`). It keeps
users, channels (public, private, direct messages), messages with threads and metadata, pins, Slack
Connect invitations, modals, Home tabs and the replies sent to `response_url`s, and answers like Slack:
`{"ok": false, "error": "<code>"}` with HTTP 200 for refusals, HTTP 429 with an integer Retry-After
for rate limits. Calls that miss a required argument are refused (`invalid_arguments`), and
trigger_ids expire after 3 seconds and work once. People joining or leaving a channel (invited, removed,
or by themselves through `join`, `leave`, `accept_shared_invite`) queue the events Slack would send the app
(member_joined_channel, member_left_channel); tests deliver them with `take_events`. It keeps HTTP/1.1
connections alive like Slack; tests can let a call take effect and then drop its answer (`drop_answers`),
or close the connections from the server's side (`close_connections`).

The facts it models (required arguments, error codes, limits) are written here from Slack's method
documentation; `tests/contract/test_fake_contract.py` compares them with Slack's published method docs
when those are available.
"""

from __future__ import annotations

import itertools
import json
import math
import socket
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

# Required arguments per method (besides the token), as Slack documents them. A tuple inside the tuple
# means "one of these".
REQUIRED: dict[str, tuple[str | tuple[str, ...], ...]] = {
    "auth.test": (),
    "apps.connections.open": (),
    "users.info": ("user",),
    "conversations.create": ("name",),
    "conversations.invite": ("channel", "users"),
    "conversations.inviteShared": ("channel", ("emails", "user_ids")),
    "conversations.kick": ("channel", "user"),
    "conversations.archive": ("channel",),
    "conversations.setTopic": ("channel", "topic"),
    "conversations.setPurpose": ("channel", "purpose"),
    "conversations.history": ("channel",),
    "conversations.replies": ("channel", "ts"),
    "conversations.open": (("users", "channel"),),
    "conversations.info": ("channel",),
    "conversations.list": (),
    "chat.postMessage": ("channel",),
    "chat.update": ("channel", "ts"),
    "chat.postEphemeral": ("channel", "user"),
    "chat.getPermalink": ("channel", "message_ts"),
    "pins.add": ("channel", "timestamp"),
    "files.getUploadURLExternal": ("filename", "length"),
    "files.completeUploadExternal": ("files",),
    "views.open": (("trigger_id", "interactivity_pointer"), "view"),
    "views.update": ("view", ("view_id", "external_id")),
    "views.push": (("trigger_id", "interactivity_pointer"), "view"),
    "views.publish": ("user_id", "view"),
}

TRIGGER_TTL = 3.0  # seconds a trigger_id lives
INVITE_MAX = 100  # users per conversations.invite call (Slack's documented limit for this fake)
TOPIC_MAX = 250
LIST_LIMIT_MAX = 999  # conversations.list: "an integer under 1000"
CHANNEL_NAME_MAX = 80
MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100
MESSAGE_TEXT_MAX = 40_000
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


class SlackRefusal(Exception):
    def __init__(self, error: str, status: int = 200, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(error)
        self.error, self.status, self.headers, self.extra = error, status, headers or {}, extra


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool = False
    is_archived: bool = False
    is_im: bool = False
    im_user: str | None = None
    members: set[str] = field(default_factory=set)
    topic: str = ""
    purpose: str = ""
    pins: list[str] = field(default_factory=list)
    shared_invites: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    creator: str | None = None
    is_ext_shared: bool = False  # someone of another organization accepted a Slack Connect invitation


@dataclass
class Fault:
    error: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


@dataclass
class RateLimit:
    """chat.postMessage limits like Slack's under load: about one message per second per channel and a
    workspace-wide cap per minute. Excess calls get HTTP 429 with an integer Retry-After."""

    per_channel_interval: float = 1.0
    workspace_per_minute: int = 300
    channel_last: dict[str, float] = field(default_factory=dict)
    window: deque[float] = field(default_factory=deque)
    refused: int = 0


class FakeSlack:
    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test",
        team_id: str = "T0OURS",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        clock: Callable[[], float] = time.time,
        latency_ms: float = 0.0,
        app_token: str | None = None,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token  # the xapp- token apps.connections.open takes (Socket Mode)
        self.socket_mode_url: str | None = None  # what apps.connections.open returns, e.g. FakeSocketMode.url
        self.team_id = team_id
        self.enterprise_id: str | None = None  # set: the app is installed in this Enterprise Grid organization
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.clock = clock
        self.latency = latency_ms / 1000.0
        self.delays: dict[str, float] = {}  # method -> seconds each call of it takes on top of `latency` (`slow`)
        self.lock = threading.RLock()
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, Channel] = {}
        self.views: dict[str, dict[str, Any]] = {}  # view id -> view as Slack holds it
        self.opened: list[dict[str, Any]] = []  # {"user", "view", "trigger_id", "method"} in order
        self.home_views: dict[str, dict[str, Any]] = {}
        self.ephemeral: list[dict[str, Any]] = []
        self.response_log: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.shared_invite_errors: dict[str, str] = {}
        self.events: list[dict[str, Any]] = []  # inner events Slack would send the app, oldest first (take_events)
        # file id -> {"filename", "length", "content" (None until uploaded), "title", "channels"}
        self.files: dict[str, dict[str, Any]] = {}
        self.paid = True
        self.trigger_ttl = TRIGGER_TTL
        self.rate: RateLimit | None = None
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        # Called with (method, args, response body) after a call succeeded and its effect is stored, before
        # the answer is sent: tests use it to hold or drop an answer (a crash right after a post).
        self.after_success: Callable[[str, dict[str, Any], dict[str, Any]], None] | None = None
        self._drops: dict[str, int] = defaultdict(int)  # method -> answers still to drop (`drop_answers`)
        self._unlisted: dict[str, int] = {}  # channel name -> conversations.list calls still to leave it out
        self.dropped: list[tuple[str, dict[str, Any]]] = []  # (method, the answer the caller never got)
        self.connections = 0  # HTTP connections accepted so far
        self._open: set[Any] = set()  # the sockets of open connections
        self._triggers: dict[str, tuple[str, float]] = {}  # trigger_id -> (user, issued at, monotonic)
        self._used_triggers: set[str] = set()
        self._ids = itertools.count(1)
        self._last_ts = 0.0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.add_user(bot_user_id, "partnerbot", team_id=team_id, is_bot=True)

    # -- life cycle --------------------------------------------------------------------------------
    def start(self) -> FakeSlack:
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.request_queue_size = 256
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-slack",
                                        daemon=True)  # a short poll: stop() returns at once
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/api/"

    # -- set-up for tests ----------------------------------------------------------------------------
    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08d}"

    def add_user(
        self, user_id: str, name: str, *, email: str | None = None, team_id: str | None = None,
        is_bot: bool = False, tz: str = "Europe/Berlin", is_stranger: bool = False, enterprise_id: str | None = None,
    ) -> None:
        """A person (or bot). With another `team_id` than ours they are of another organization, as Slack
        shows people in Slack Connect channels: `is_external` set, and their email only when it is given
        (their organization may hide it). `is_stranger`: someone of an organization we share no channel with
        yet, whose team Slack does not tell. `enterprise_id`: their Enterprise Grid organization; another team of
        the same organization is not external."""
        with self.lock:
            team = team_id or self.team_id
            user: dict[str, Any] = {
                "id": user_id, "team_id": team, "name": name, "real_name": name.title(),
                "is_bot": is_bot, "deleted": False, "tz": tz,
                "profile": {"display_name": name, "real_name": name.title(), **({"email": email} if email else {})},
            }
            if enterprise_id:
                user["enterprise_user"] = {"id": f"W{user_id[1:]}", "enterprise_id": enterprise_id,
                                           "enterprise_name": enterprise_id, "is_admin": False, "is_owner": False,
                                           "teams": [team]}
            same_org = enterprise_id is not None and enterprise_id == self.enterprise_id
            if (team != self.team_id and not same_org) or is_stranger:
                user["is_external"] = True
            if is_stranger:
                user["is_stranger"] = True
                user["team_id"] = ""
            self.users[user_id] = user

    def deactivate(self, user_id: str) -> None:
        """The person's account is deactivated (Slack keeps it, marked deleted)."""
        with self.lock:
            self.users[user_id]["deleted"] = True

    def add_channel(
        self, name: str, *, members: list[str] | None = None, is_private: bool = False, is_archived: bool = False,
    ) -> str:
        with self.lock:
            ch = Channel(self._id("C"), name, is_private=is_private, is_archived=is_archived,
                         members=set(members or []))
            self.channels[ch.id] = ch
            return ch.id

    def join(self, channel_id: str, user_id: str, *, inviter: str | None = None) -> None:
        """A person joins a channel in Slack (by themselves, or added by `inviter` without the app)."""
        with self.lock:
            self._join(self.channels[channel_id], user_id, inviter)

    def leave(self, channel_id: str, user_id: str) -> None:
        """A person leaves a channel in Slack."""
        with self.lock:
            self._leave(self.channels[channel_id], user_id)

    def accept_shared_invite(self, email: str, user_id: str) -> str:
        """The person invited at `email` accepts the Slack Connect invitation as `user_id` and joins the
        channel; returns the channel id."""
        with self.lock:
            ch = next(c for c in self.channels.values()
                      if any(i.get("email") == email for i in c.shared_invites))
            if self.users[user_id]["team_id"] != self.team_id:
                ch.is_ext_shared = True
            self._join(ch, user_id, None)
            return ch.id

    def take_events(self) -> list[dict[str, Any]]:
        """The events queued since the last call, oldest first (what Slack would deliver to the app)."""
        with self.lock:
            events, self.events = self.events, []
            return events

    def _join(self, ch: Channel, user_id: str, inviter: str | None) -> None:
        if user_id in ch.members:
            return
        ch.members.add(user_id)
        self._emit(ch, "member_joined_channel", user_id, **({"inviter": inviter} if inviter else {}))

    def _leave(self, ch: Channel, user_id: str) -> None:
        if user_id not in ch.members:
            return
        ch.members.discard(user_id)
        self._emit(ch, "member_left_channel", user_id)

    def _emit(self, ch: Channel, kind: str, user_id: str, **extra: Any) -> None:
        if ch.is_im:
            return
        team = self.users.get(user_id, {}).get("team_id") or self.team_id
        self.events.append({"type": kind, "user": user_id, "channel": ch.id,
                            "channel_type": "G" if ch.is_private else "C", "team": team,
                            "event_ts": self._ts(), **extra})

    def fail(
        self, method: str, error: str, *, status: int = 200, headers: dict[str, str] | None = None, times: int = 1,
    ) -> None:
        """The next `times` calls of `method` fail with `error` (HTTP `status`, extra `headers`)."""
        with self.lock:
            self._faults[method].append(Fault(error, status, dict(headers or {}), times))

    def slow(self, method: str, seconds: float) -> None:
        """Every call of `method` from now on takes `seconds` longer to answer (0: no longer)."""
        self.delays[method] = seconds

    def clear_faults(self) -> None:
        """Forget the failures `fail` queued that have not happened yet."""
        with self.lock:
            self._faults.clear()

    def drop_answers(self, method: str, *, times: int = 1) -> None:
        """The next `times` successful calls of `method` take effect, then the connection closes without
        an answer (as when the network fails on the way back); `dropped` records what was lost."""
        with self.lock:
            self._drops[method] += times

    def list_late(self, name: str, *, times: int) -> None:
        """The next `times` conversations.list calls leave out the channel called `name` (as Slack's list
        may not show a channel created a moment ago)."""
        with self.lock:
            self._unlisted[name] = times

    def close_connections(self) -> None:
        """Close every open connection from the server's side, as a server does with idle keep-alive ones."""
        with self.lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def rate_limit(self, *, per_channel_interval: float = 1.0, workspace_per_minute: int = 300) -> RateLimit:
        with self.lock:
            self.rate = RateLimit(per_channel_interval, workspace_per_minute)
            return self.rate

    def issue_trigger(self, user_id: str) -> str:
        with self.lock:
            trigger = f"{next(self._ids)}.{uuid.uuid4().hex[:12]}"
            self._triggers[trigger] = (user_id, time.monotonic())
            return trigger

    def new_response_url(self) -> str:
        return f"{self.url}/response/{uuid.uuid4().hex}"

    # -- what tests read --------------------------------------------------------------------------------
    def channel_by_name(self, name: str) -> Channel | None:
        with self.lock:
            return next((c for c in self.channels.values() if c.name == name and not c.is_im), None)

    def messages(self, channel_id: str) -> list[dict[str, Any]]:
        """Top-level messages of a channel, oldest first (as a person scrolls them)."""
        with self.lock:
            return [m for m in self.channels[channel_id].messages if m.get("thread_ts") in (None, m["ts"])]

    def replies(self, channel_id: str, thread_ts: str) -> list[dict[str, Any]]:
        """The replies in a thread, oldest first (without the parent)."""
        with self.lock:
            return [m for m in self.channels[channel_id].messages
                    if m.get("thread_ts") == thread_ts and m["ts"] != thread_ts]

    def message(self, channel_id: str, ts: str) -> dict[str, Any]:
        with self.lock:
            return next(m for m in self.channels[channel_id].messages if m["ts"] == ts)

    def say(self, channel_id: str, user_id: str, text: str) -> dict[str, Any]:
        """A person posts a message in a channel (as they would in Slack's client)."""
        with self.lock:
            message = {"type": "message", "ts": self._ts(), "user": user_id, "text": text, "channel": channel_id}
            self.channels[channel_id].messages.append(message)
            return message

    def delete(self, channel_id: str, ts: str) -> None:
        """A person deletes a message (chat.update then answers message_not_found)."""
        with self.lock:
            ch = self.channels[channel_id]
            ch.messages = [m for m in ch.messages if m["ts"] != ts]

    def dm_channel(self, user_id: str) -> Channel | None:
        with self.lock:
            return next((c for c in self.channels.values() if c.is_im and c.im_user == user_id), None)

    def dm_messages(self, user_id: str) -> list[dict[str, Any]]:
        ch = self.dm_channel(user_id)
        return self.messages(ch.id) if ch else []

    def ephemerals(self, user_id: str, channel_id: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.ephemeral if e["user"] == user_id and channel_id in (None, e["channel"])]

    def responses(self, url: str | None) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.response_log.get(url or "", []))

    def open_views(self, user_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [o for o in self.opened if o["user"] == user_id]

    def call_count(self, method: str) -> int:
        with self.lock:
            return sum(1 for m, _ in self.calls if m == method)

    # -- HTTP entry points -------------------------------------------------------------------------------
    def handle_api(
        self, method: str, args: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        delay = self.latency + self.delays.get(method, 0.0)
        if delay:
            time.sleep(delay)
        with self.lock:
            self.calls.append((method, args))
            try:
                if not token or token != (self.app_token if method == "apps.connections.open" else self.bot_token):
                    raise SlackRefusal("invalid_auth" if token else "not_authed")
                fault = self._next_fault(method)
                if fault is not None:
                    raise SlackRefusal(fault.error, fault.status, fault.headers)
                handler = getattr(self, "m_" + method.replace(".", "_"), None)
                if handler is None or method not in REQUIRED:
                    raise SlackRefusal("unknown_method")
                self._check_required(method, args)
                result = handler(args)
                outcome: tuple[int, dict[str, Any], dict[str, str]] = (200, {"ok": True, **result}, {})
            except SlackRefusal as refusal:
                body = {"ok": False, "error": refusal.error, **refusal.extra}
                return refusal.status, body, refusal.headers
            if self._drops.get(method):
                self._drops[method] -= 1
                self.dropped.append((method, outcome[1]))
                raise ConnectionAbortedError(f"{method}: the answer is dropped")
        hook = self.after_success
        if hook is not None:  # outside the lock: a hook may block this one request (e.g. to hold its answer)
            hook(method, args, outcome[1])
        return outcome

    def handle_upload(self, file_id: str, data: bytes) -> int:
        with self.lock:
            upload = self.files.get(file_id)
            if upload is None or upload["content"] is not None:
                return 404
            upload["content"] = data
            return 200

    def handle_response_url(self, path: str, payload: dict[str, Any]) -> int:
        with self.lock:
            self.response_log[self.url + path].append(payload)
            return 200

    # -- plumbing ------------------------------------------------------------------------------------------
    def _next_fault(self, method: str) -> Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.popleft()
        return fault

    def _check_required(self, method: str, args: dict[str, Any]) -> None:
        missing = []
        for need in REQUIRED[method]:
            options = need if isinstance(need, tuple) else (need,)
            if not any(args.get(o) not in (None, "") for o in options):
                missing.append(" or ".join(options))
        if missing:
            raise SlackRefusal(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] missing required field: {m}" for m in missing]},
            )

    def _ts(self) -> str:
        now = max(self.clock(), self._last_ts + 0.000001)
        self._last_ts = now
        return f"{now:.6f}"

    def _channel(self, channel_id: str, *, for_write: bool = False) -> Channel:
        ch = self.channels.get(channel_id)
        if ch is None and channel_id[:1] in ("U", "W") and channel_id in self.users:
            ch = self._open_im(channel_id)  # posting to a user id lands in the app's DM with them
        if ch is None:
            raise SlackRefusal("channel_not_found")
        if ch.is_private and self.bot_user_id not in ch.members:
            raise SlackRefusal("channel_not_found")
        if for_write and ch.is_archived:
            raise SlackRefusal("is_archived")
        return ch

    def _open_im(self, user_id: str) -> Channel:
        ch = next((c for c in self.channels.values() if c.is_im and c.im_user == user_id), None)
        if ch is None:
            ch = Channel(self._id("D"), user_id, is_private=True, is_im=True, im_user=user_id,
                         members={user_id, self.bot_user_id})
            self.channels[ch.id] = ch
        return ch

    def _require_member(self, ch: Channel) -> None:
        if self.bot_user_id not in ch.members:
            raise SlackRefusal("not_in_channel")

    def _find_message(self, ch: Channel, ts: str) -> dict[str, Any]:
        for m in ch.messages:
            if m["ts"] == ts:
                return m
        raise SlackRefusal("message_not_found")

    @staticmethod
    def _json_arg(value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise SlackRefusal("invalid_arguments") from None
        return value

    @staticmethod
    def _bool(value: Any) -> bool:
        return value in (True, 1, "1", "true", "True")

    def _check_blocks(self, blocks: Any) -> list[dict[str, Any]] | None:
        if blocks in (None, ""):
            return None
        blocks = self._json_arg(blocks)
        if not isinstance(blocks, list) or not all(isinstance(b, dict) and b.get("type") for b in blocks):
            raise SlackRefusal("invalid_blocks")
        if len(blocks) > MESSAGE_BLOCKS_MAX:
            raise SlackRefusal("invalid_blocks")
        for text in _texts(blocks):
            if len(text) > 3000:
                raise SlackRefusal("invalid_blocks")
        return blocks

    def _rate_check(self, channel_id: str) -> None:
        rate = self.rate
        if rate is None:
            return
        now = time.monotonic()
        while rate.window and now - rate.window[0] >= 60:
            rate.window.popleft()
        if len(rate.window) >= rate.workspace_per_minute:
            rate.refused += 1
            wait = max(1, math.ceil(60 - (now - rate.window[0])))
            raise SlackRefusal("ratelimited", 429, {"Retry-After": str(wait)})
        last = rate.channel_last.get(channel_id)
        if last is not None and now - last < rate.per_channel_interval:
            rate.refused += 1
            raise SlackRefusal("ratelimited", 429, {"Retry-After": str(max(1, math.ceil(rate.per_channel_interval)))})
        rate.channel_last[channel_id] = now
        rate.window.append(now)

    # -- identity --------------------------------------------------------------------------------------------
    def m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"url": "https://fake.slack.test/", "team": "Our team", "user": "partnerbot", "team_id": self.team_id,
                "user_id": self.bot_user_id, "bot_id": self.bot_id, "is_enterprise_install": False,
                **({"enterprise_id": self.enterprise_id} if self.enterprise_id else {})}

    def m_apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not self.socket_mode_url:
            raise SlackRefusal("internal_error")  # no FakeSocketMode was attached to this fake
        return {"url": self.socket_mode_url}

    def m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(args["user"])
        if user is None:
            raise SlackRefusal("user_not_found")
        return {"user": user}

    # -- conversations ------------------------------------------------------------------------------------------
    def m_conversations_create(self, args: dict[str, Any]) -> dict[str, Any]:
        name = str(args["name"])
        if len(name) > CHANNEL_NAME_MAX:
            raise SlackRefusal("invalid_name_maxlength")
        if not set(name) <= _NAME_CHARS:
            raise SlackRefusal("invalid_name_specials")
        if any(c.name == name and not c.is_im for c in self.channels.values()):
            raise SlackRefusal("name_taken")
        ch = Channel(self._id("G" if self._bool(args.get("is_private")) else "C"), name,
                     is_private=self._bool(args.get("is_private")), creator=self.bot_user_id)
        self.channels[ch.id] = ch
        self._join(ch, self.bot_user_id, None)
        return {"channel": self._channel_json(ch)}

    def m_conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        """Public channels, and the private ones the bot is in, by `types`; paged with an index cursor."""
        types = set(str(args.get("types") or "public_channel").split(","))
        if not types <= {"public_channel", "private_channel", "mpim", "im"}:
            raise SlackRefusal("invalid_types")
        limit = int(args.get("limit") or 100)
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise SlackRefusal("invalid_limit")
        exclude_archived = self._bool(args.get("exclude_archived"))
        late = {name for name, times in self._unlisted.items() if times > 0}
        if not args.get("cursor"):  # one whole listing counts once
            self._unlisted = {name: times - 1 for name, times in self._unlisted.items() if times > 1}
        listed = [
            ch for ch in self.channels.values()
            if ("im" if ch.is_im else "private_channel" if ch.is_private else "public_channel") in types
            and (not ch.is_private or self.bot_user_id in ch.members)
            and not (exclude_archived and ch.is_archived) and ch.name not in late
        ]
        try:
            start = int(args.get("cursor") or 0)
        except ValueError:
            raise SlackRefusal("invalid_cursor") from None
        page = listed[start : start + limit]
        more = start + limit < len(listed)
        return {"channels": [self._channel_json(ch) for ch in page],
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    def _channel_json(self, ch: Channel) -> dict[str, Any]:
        return {"id": ch.id, "name": ch.name, "is_channel": not ch.is_private and not ch.is_im,
                "is_group": ch.is_private and not ch.is_im, "is_im": ch.is_im, "is_private": ch.is_private,
                "is_archived": ch.is_archived, "is_member": self.bot_user_id in ch.members,
                "topic": {"value": ch.topic}, "purpose": {"value": ch.purpose}, "creator": ch.creator,
                "is_ext_shared": ch.is_ext_shared,
                **({"user": ch.im_user} if ch.is_im else {})}

    def m_conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"channel": self._channel_json(self._channel(args["channel"]))}

    def m_conversations_invite(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(args["channel"], for_write=True)
        self._require_member(ch)
        users = [u for u in str(args["users"]).split(",") if u]
        if len(users) > INVITE_MAX:
            raise SlackRefusal("too_many_users")
        errors = []
        for uid in users:
            if uid == self.bot_user_id:
                errors.append((uid, "cant_invite_self"))
            elif uid not in self.users:
                errors.append((uid, "user_not_found"))
            elif uid in ch.members:
                errors.append((uid, "already_in_channel"))
        if errors and not (self._bool(args.get("force")) and len(errors) < len(users)):
            raise SlackRefusal(errors[0][1], errors=[{"user": u, "ok": False, "error": e} for u, e in errors])
        bad = {u for u, _ in errors}
        for uid in users:
            if uid not in bad:
                self._join(ch, uid, self.bot_user_id)
        result: dict[str, Any] = {"channel": self._channel_json(ch)}
        if errors:  # force=true: the valid ones are in, the others are listed
            result["errors"] = [{"user": u, "ok": False, "error": e} for u, e in errors]
        return result

    def m_conversations_inviteShared(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(args["channel"], for_write=True)
        self._require_member(ch)
        emails = [e for e in str(args.get("emails") or "").split(",") if e]
        user_ids = [u for u in str(args.get("user_ids") or "").split(",") if u]
        if len(emails) + len(user_ids) > 1:
            raise SlackRefusal("too_many_emails" if emails else "too_many_users")
        if not self.paid:
            raise SlackRefusal("not_paid")
        if ch.is_im:
            raise SlackRefusal("invalid_channel_type")
        target = emails[0] if emails else user_ids[0]
        if emails and ("@" not in target or "." not in target.split("@")[-1]):
            raise SlackRefusal("invalid_email")
        if target in self.shared_invite_errors:
            raise SlackRefusal(self.shared_invite_errors[target])
        invite_id = self._id("I")
        ch.shared_invites.append({"invite_id": invite_id, **({"email": target} if emails else {"user_id": target})})
        return {"invite_id": invite_id, "is_legacy_shared_channel": False}

    def m_conversations_kick(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(args["channel"], for_write=True)
        user = args["user"]
        if user == self.bot_user_id:
            raise SlackRefusal("cant_kick_self")
        if user not in ch.members:
            raise SlackRefusal("not_in_channel")
        self._leave(ch, user)
        return {}

    def m_conversations_archive(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(args["channel"])
        if ch.is_archived:
            raise SlackRefusal("already_archived")
        self._require_member(ch)
        ch.is_archived = True
        return {}

    def _set_text(self, args: dict[str, Any], attr: str) -> dict[str, Any]:
        ch = self._channel(args["channel"], for_write=True)
        self._require_member(ch)
        value = str(args[attr])
        if len(value) > TOPIC_MAX:
            raise SlackRefusal("too_long")
        setattr(ch, attr, value)
        return {"channel": self._channel_json(ch)}

    def m_conversations_setTopic(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._set_text(args, "topic")

    def m_conversations_setPurpose(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._set_text(args, "purpose")

    def m_conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("channel"):
            return {"channel": self._channel_json(self._channel(args["channel"]))}
        users = [u for u in str(args["users"]).split(",") if u]
        if len(users) != 1:
            raise SlackRefusal("not_supported")  # group DMs are not modelled
        if users[0] not in self.users:
            raise SlackRefusal("user_not_found")
        if self.users[users[0]].get("deleted"):
            raise SlackRefusal("user_disabled")  # a deactivated account
        return {"channel": {"id": self._open_im(users[0]).id}}

    def _visible(self, m: dict[str, Any], include_metadata: bool) -> dict[str, Any]:
        out = {k: v for k, v in m.items() if k != "metadata" or include_metadata}
        if "reply_count" in out and not out["reply_count"]:
            out.pop("reply_count")
        return out

    def m_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(args["channel"])
        self._require_member(ch)
        oldest = float(args.get("oldest") or 0)
        latest = float(args.get("latest") or 1e12)
        inclusive = self._bool(args.get("inclusive"))
        limit = min(int(args.get("limit") or 100), 999)
        meta = self._bool(args.get("include_all_metadata"))
        picked = []
        for m in reversed(ch.messages):  # newest first
            if m.get("thread_ts") not in (None, m["ts"]):
                continue
            ts = float(m["ts"])
            if (oldest < ts < latest) or (inclusive and ts in (oldest, latest)):
                picked.append(self._visible(m, meta))
        start = int(args.get("cursor") or 0)
        page = picked[start : start + limit]
        more = start + limit < len(picked)
        return {"messages": page, "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    def m_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(args["channel"])
        self._require_member(ch)
        parent = next((m for m in ch.messages if m["ts"] == args["ts"]), None)
        if parent is None:
            raise SlackRefusal("thread_not_found")
        meta = self._bool(args.get("include_all_metadata"))
        thread = [parent] + [m for m in ch.messages if m.get("thread_ts") == args["ts"] and m["ts"] != args["ts"]]
        oldest = float(args.get("oldest") or 0)
        thread = [m for m in thread if m is parent or float(m["ts"]) > oldest]
        return {"messages": [self._visible(m, meta) for m in thread], "has_more": False}

    # -- messages ----------------------------------------------------------------------------------------------
    def m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(args["channel"], for_write=True)
        self._require_member(ch)
        blocks = self._check_blocks(args.get("blocks"))
        text = args.get("text")
        if not text and not blocks:
            raise SlackRefusal("no_text")
        if text and len(str(text)) > MESSAGE_TEXT_MAX:
            raise SlackRefusal("msg_too_long")
        thread_ts = args.get("thread_ts") or None
        if thread_ts is not None:
            parent = self._find_message(ch, str(thread_ts))
            parent["reply_count"] = parent.get("reply_count", 0) + 1
        self._rate_check(ch.id)
        metadata = self._json_arg(args.get("metadata")) if args.get("metadata") else None
        if metadata is not None and not (isinstance(metadata, dict) and metadata.get("event_type")
                                         and isinstance(metadata.get("event_payload"), dict)):
            raise SlackRefusal("invalid_metadata_format")
        message = {"type": "message", "ts": self._ts(), "user": self.bot_user_id, "bot_id": self.bot_id,
                   "text": text or "", "channel": ch.id}
        if blocks is not None:
            message["blocks"] = blocks
        if thread_ts is not None:
            message["thread_ts"] = str(thread_ts)
        if metadata is not None:
            message["metadata"] = metadata
        ch.messages.append(message)
        return {"channel": ch.id, "ts": message["ts"], "message": {k: v for k, v in message.items() if k != "channel"}}

    def m_files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            length = int(args["length"])
        except (TypeError, ValueError):
            raise SlackRefusal("invalid_arguments") from None
        if length < 1:
            raise SlackRefusal("invalid_arguments")
        file_id = self._id("F")
        self.files[file_id] = {"filename": str(args["filename"]), "length": length, "content": None, "title": None,
                               "channels": []}
        return {"upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def m_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        files = self._json_arg(args["files"])
        if not isinstance(files, list) or not files:
            raise SlackRefusal("invalid_arguments")
        channel = args.get("channel_id") or None
        ch = self._channel(str(channel), for_write=True) if channel else None
        if ch is not None:
            self._require_member(ch)
        done = []
        for item in files:
            upload = self.files.get(str(item.get("id")))
            if upload is None or upload["content"] is None or len(upload["content"]) != upload["length"]:
                raise SlackRefusal("file_not_found")
            upload["title"] = item.get("title") or upload["filename"]
            done.append({"id": item["id"], "name": upload["filename"], "title": upload["title"]})
        if ch is not None:
            for upload in done:
                self.files[upload["id"]]["channels"].append(ch.id)
            ch.messages.append({"type": "message", "ts": self._ts(), "user": self.bot_user_id, "bot_id": self.bot_id,
                                "text": args.get("initial_comment") or "", "channel": ch.id, "files": done})
        return {"files": done}

    def m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(args["channel"], for_write=True)
        message = self._find_message(ch, str(args["ts"]))
        if message.get("bot_id") != self.bot_id:
            raise SlackRefusal("cant_update_message")
        blocks = self._check_blocks(args.get("blocks"))
        if args.get("text") is None and blocks is None:
            raise SlackRefusal("no_text")
        if args.get("text") is not None:
            message["text"] = args["text"]
        if blocks is not None:
            message["blocks"] = blocks
        if args.get("metadata"):
            message["metadata"] = self._json_arg(args["metadata"])
        message["edited"] = {"user": self.bot_user_id, "ts": self._ts()}
        return {"channel": ch.id, "ts": message["ts"], "text": message["text"]}

    def m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(args["channel"], for_write=True)
        if args["user"] not in self.users:
            raise SlackRefusal("user_not_found")
        if args["user"] not in ch.members:
            raise SlackRefusal("user_not_in_channel")
        blocks = self._check_blocks(args.get("blocks"))
        if not args.get("text") and not blocks:
            raise SlackRefusal("no_text")
        ts = self._ts()
        self.ephemeral.append({"channel": ch.id, "user": args["user"], "text": args.get("text") or "",
                               "blocks": blocks, "ts": ts})
        return {"message_ts": ts}

    def m_chat_getPermalink(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(args["channel"])
        self._find_message(ch, str(args["message_ts"]))
        ts = str(args["message_ts"]).replace(".", "")
        return {"channel": ch.id, "permalink": f"https://fake.slack.test/archives/{ch.id}/p{ts}"}

    def m_pins_add(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(args["channel"], for_write=True)
        self._require_member(ch)
        ts = str(args["timestamp"])
        self._find_message(ch, ts)
        if ts in ch.pins:
            raise SlackRefusal("already_pinned")
        ch.pins.append(ts)
        return {}

    # -- views -----------------------------------------------------------------------------------------------
    def _use_trigger(self, trigger_id: str) -> str:
        if trigger_id in self._used_triggers:
            raise SlackRefusal("exchanged_trigger_id")
        issued = self._triggers.get(trigger_id)
        if issued is None:
            raise SlackRefusal("invalid_trigger_id")
        user, at = issued
        if time.monotonic() - at > self.trigger_ttl:
            raise SlackRefusal("expired_trigger_id")
        self._used_triggers.add(trigger_id)
        return user

    def expire_triggers(self) -> None:
        """Make every trigger_id issued so far too old (as if more than 3 s had passed)."""
        with self.lock:
            self._triggers = {t: (u, at - TRIGGER_TTL - 1) for t, (u, at) in self._triggers.items()}

    def _check_view(self, view: Any, *, kind: str) -> dict[str, Any]:
        view = self._json_arg(view)
        if not isinstance(view, dict) or view.get("type") != kind:
            raise SlackRefusal("invalid_arguments")
        blocks = view.get("blocks")
        if not isinstance(blocks, list) or len(blocks) > VIEW_BLOCKS_MAX:
            raise SlackRefusal("invalid_arguments")
        if kind == "modal":
            title = (view.get("title") or {}).get("text", "")
            if not 1 <= len(title) <= 24 or len(view.get("private_metadata") or "") > 3000:
                raise SlackRefusal("invalid_arguments")
        if len(json.dumps(view)) > 250_000:
            raise SlackRefusal("view_too_large")
        return view

    def _store_view(self, view: dict[str, Any], view_id: str | None = None) -> dict[str, Any]:
        stored = {**view, "id": view_id or self._id("V"), "team_id": self.team_id, "state": {"values": {}},
                  "hash": uuid.uuid4().hex[:16], "app_installed_team_id": self.team_id, "bot_id": self.bot_id,
                  "private_metadata": view.get("private_metadata", ""), "callback_id": view.get("callback_id", ""),
                  "external_id": view.get("external_id", "")}
        self.views[stored["id"]] = stored
        return stored

    def m_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = self._check_view(args["view"], kind="modal")
        trigger = args.get("trigger_id") or args.get("interactivity_pointer")
        user = self._use_trigger(str(trigger))
        stored = self._store_view(view)
        self.opened.append({"user": user, "view": stored, "trigger_id": trigger, "method": "views.open"})
        return {"view": stored}

    def m_views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        view = self._check_view(args["view"], kind="modal")
        user = self._use_trigger(str(args.get("trigger_id") or args.get("interactivity_pointer")))
        stored = self._store_view(view)
        self.opened.append({"user": user, "view": stored, "trigger_id": args.get("trigger_id"), "method": "views.push"})
        return {"view": stored}

    def m_views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view = self._check_view(args["view"], kind=(self._json_arg(args["view"]) or {}).get("type", "modal"))
        view_id = args.get("view_id") or next(
            (v["id"] for v in self.views.values() if v.get("external_id") == args.get("external_id")), None)
        if view_id not in self.views:
            raise SlackRefusal("not_found")
        if args.get("hash") and args["hash"] != self.views[view_id]["hash"]:
            raise SlackRefusal("hash_conflict")
        return {"view": self._store_view(view, view_id)}

    def m_views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        view = self._check_view(args["view"], kind="home")
        if args["user_id"] not in self.users:
            raise SlackRefusal("user_not_found")
        stored = self._store_view(view)
        self.home_views[args["user_id"]] = stored
        return {"view": stored}


def _texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["text"]] if isinstance(node.get("text"), str) else []
        for value in node.values():
            if isinstance(value, (dict, list)):
                found += _texts(value)
        return found
    if isinstance(node, list):
        return [t for item in node for t in _texts(item)]
    return []


class _Handler(BaseHTTPRequestHandler):
    fake: FakeSlack
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm holds the body back until
        # the client's delayed ACK (40 ms) on a kept-alive connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.fake.lock:
            self.fake.connections += 1
            self.fake._open.add(self.connection)

    def finish(self) -> None:
        with self.fake.lock:
            self.fake._open.discard(self.connection)
        super().finish()

    def _read(self) -> tuple[dict[str, Any], str | None]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        ctype = (self.headers.get("Content-Type") or "").lower()
        args: dict[str, Any]
        if "json" in ctype:
            args = json.loads(raw) if raw.strip() else {}
        else:
            args = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        token = None
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Bearer "):
            token = auth.removeprefix("Bearer ").strip()
        token = token or args.pop("token", None)
        args.pop("token", None)
        return args, token

    def _send(self, status: int, body: dict[str, Any] | str, headers: dict[str, str] | None = None) -> None:
        data = (json.dumps(body) if isinstance(body, dict) else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8" if isinstance(body, dict) else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        if self.path.startswith("/upload/"):  # a file's bytes, to the URL files.getUploadURLExternal gave
            length = int(self.headers.get("Content-Length") or 0)
            status = self.fake.handle_upload(self.path.removeprefix("/upload/"), self.rfile.read(length))
            self._send(status, f"OK - {length}" if status == 200 else "not found")
            return
        args, token = self._read()
        if self.path.startswith("/api/"):
            method = self.path.removeprefix("/api/").split("?")[0]
            try:
                status, body, headers = self.fake.handle_api(method, args, token)
            except ConnectionError:  # a hook dropped the answer: close without one, like a broken connection
                self.close_connection = True
                return
            try:
                self._send(status, body, headers)
            except ConnectionError:  # the caller is gone (e.g. a worker killed mid-request)
                self.close_connection = True
        elif self.path.startswith("/response/"):
            status = self.fake.handle_response_url(self.path, args)
            self._send(status, "ok" if status == 200 else "no_such_url")
        else:
            self._send(404, "not found")

    do_GET = do_POST
