"""The one place that talks to the Slack Web API.

Every call goes through `SlackGateway._call`, which knows the bot scope each method needs
(`METHOD_SCOPES`, checked against `manifest.yml` by the tests) and turns slack_sdk errors into
`SlackError`, so the services never import slack_sdk or slack_bolt. Rate limits (HTTP 429 with
Retry-After), connection errors and 5xx answers are retried by slack_sdk's retry handlers, except for
calls that must not happen twice: a keyed post (`SlackGateway.post(key=...)`) and channel creation are
never re-sent blindly; after an answer that may have been lost they look for the result first.

The client (`KeepAliveWebClient`) keeps its HTTP connections open between calls, one pool per client
shared by all threads, instead of slack_sdk's new connection per call.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import select
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler, RetryHandler
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.webhook import WebhookClient

log = logging.getLogger(__name__)

# Bot scopes each Web API method needs. Where Slack accepts several, these are the ones we ask for
# (channels:* for public channels, groups:* for private ones). manifest.yml must grant them all.
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.getPermalink": (),
    "conversations.create": ("channels:manage", "groups:write"),
    "conversations.invite": ("channels:manage", "groups:write"),
    "conversations.inviteShared": ("conversations.connect:write",),
    "conversations.kick": ("channels:manage", "groups:write"),
    "conversations.archive": ("channels:manage", "groups:write"),
    "conversations.setTopic": ("channels:manage", "groups:write"),
    "conversations.setPurpose": ("channels:manage", "groups:write"),
    "conversations.history": ("channels:history", "groups:history", "im:history"),
    "conversations.replies": ("channels:history", "groups:history"),
    "conversations.list": ("channels:read", "groups:read"),
    "conversations.open": ("im:write",),
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
    "pins.add": ("pins:write",),
    "users.info": ("users:read",),
    "views.open": (),
    "views.publish": (),
}
# Scopes that show more of a method's answer rather than allow the call. users.info includes the person's
# `profile.email` only with users:read.email: Partnerbot matches a partner contact who joins the channel to
# the Slack Connect invitation sent to that address. manifest.yml must grant these too.
FIELD_SCOPES: dict[str, tuple[str, ...]] = {
    "users.info": ("users:read.email",),
}

# conversations.invite takes a limited number of users per call; we send batches of this size.
INVITE_BATCH = 100

# Errors that mean "try again later" rather than "this request is wrong".
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "service_unavailable", "fatal_error", "internal_error", "request_timeout"}
)
# Errors after which Slack may have done what was asked: "It's possible some aspect of the operation
# succeeded before the error was raised" (Slack's method docs). So may a 5xx, a timeout or a lost answer.
MAYBE_DONE_ERRORS = frozenset({"connection_error", "internal_error", "fatal_error"})

# How often a call that must not happen twice (a keyed post, conversations.create) is sent at most, when
# each try fails in a way that leaves open whether Slack did it and the look-up finds nothing.
ONCE_TRIES = 3
# conversations.create: how long to wait before looking again for a channel whose creation answer was lost
# and that the channel list does not show yet (seconds, one look after each).
CREATE_LOOKUP_DELAYS = (0.5, 1.0, 2.0)
CREATION_UNCONFIRMED = "creation_unconfirmed"  # our code: Slack may have created the channel, it cannot be found
# A keyed post whose answer was lost is among the newest messages of its channel: this many are searched
# (one page of conversations.history). A thread is searched whole: its replies come oldest first.
RECENT_MESSAGES = 200
# conversations.list pages (up to 999 channels each) searched for a channel whose creation answer was lost.
CHANNEL_LIST_PAGE = 999
CHANNEL_LIST_MAX_PAGES = 100
# Idle keep-alive connections a client keeps (per host); more threads than this at once just open more.
POOL_MAX_IDLE = 16
# An idle connection is not used after this long: servers close idle ones after a minute or more, and one
# closing just as a request goes out leaves open whether that request was done.
POOL_IDLE_SECONDS = 30.0

# A trigger_id (to open a form) lives 3 s from the click. A call made while it ticks (views.open, the look-ups
# before it) is sent once and given up after this long: slack_sdk's handlers would retry a 429 only after its
# Retry-After (seconds or more) and a 5xx after a back-off, by which time the trigger has expired.
WAITING_TIMEOUT = 3.0

# Messages the app must find again carry a key in their metadata. The event type and field name are the
# ones the first scheduled posts used, so messages posted before still match.
METADATA_EVENT = "partnerbot_occurrence"
_KEY_FIELD = "occurrence_key"


@dataclass
class SlackError(Exception):
    """A Web API call failed. `code` is Slack's error code (or a transport fault)."""

    method: str
    code: str
    status: int | None = None
    retry_after: float | None = None

    def __str__(self) -> str:
        return f"{self.method}: {self.code}"

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT_ERRORS or self.code == "connection_error" or (self.status or 0) >= 500

    @property
    def maybe_done(self) -> bool:
        """Slack may have done it anyway: the answer was lost (connection error, timeout), or Slack failed
        part-way (a 5xx, internal_error, fatal_error). Re-sending blindly could do it twice."""
        return self.code in MAYBE_DONE_ERRORS or (self.status or 0) >= 500


def keyed_metadata(key: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Message metadata that carries `key` (and `extra` fields), so the message can be found again."""
    return {"event_type": METADATA_EVENT, "event_payload": {**(extra or {}), _KEY_FIELD: key}}


def message_key(metadata: Any) -> str | None:
    """The key a message's metadata carries (a dict, or the JSON string a form body sends), if any."""
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return None
    if not isinstance(metadata, dict) or metadata.get("event_type") != METADATA_EVENT:
        return None
    key = (metadata.get("event_payload") or {}).get(_KEY_FIELD)
    return key if isinstance(key, str) else None


def retry_handlers(*, rate_limits: bool = True, max_retries: int = 2) -> list[RetryHandler]:
    """slack_sdk's own retry handlers: connection errors, 5xx, and (optionally) 429 with Retry-After."""
    handlers: list[RetryHandler] = [
        ConnectionErrorRetryHandler(max_retry_count=max_retries),
        ServerErrorRetryHandler(max_retry_count=max_retries),
    ]
    if rate_limits:
        handlers.append(RateLimitErrorRetryHandler(max_retry_count=max_retries))
    return handlers


class ConnectionPool:
    """Idle keep-alive HTTP connections by (scheme, host), shared by the threads of one client. A thread
    takes a connection for one request and gives it back once the answer has been read."""

    def __init__(
        self, max_idle: int = POOL_MAX_IDLE, idle_seconds: float = POOL_IDLE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._idle: dict[tuple[str, str], list[tuple[http.client.HTTPConnection, float]]] = {}
        self._lock = threading.Lock()
        self._max_idle = max_idle
        self._idle_seconds = idle_seconds
        self._monotonic = monotonic
        self._closed = False

    def take(self, scheme: str, host: str) -> http.client.HTTPConnection | None:
        """The most recently used idle connection, unless it idled too long or the server closed it."""
        while True:
            with self._lock:
                idle = self._idle.get((scheme, host))
                if not idle:
                    return None
                conn, since = idle.pop()
            if self._monotonic() - since < self._idle_seconds and not _closed_by_server(conn):
                return conn
            conn.close()

    def give_back(self, scheme: str, host: str, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault((scheme, host), [])
            if not self._closed and conn.sock is not None and len(idle) < self._max_idle:
                idle.append((conn, self._monotonic()))
                return
        conn.close()

    def close(self) -> None:
        """Close the idle connections; connections in use are closed when given back."""
        with self._lock:
            self._closed = True
            conns = [c for idle in self._idle.values() for c, _ in idle]
            self._idle.clear()
        for conn in conns:
            conn.close()


def _closed_by_server(conn: http.client.HTTPConnection) -> bool:
    """An idle connection that is readable was closed by the server (or holds bytes nobody asked for)."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class KeepAliveWebClient(WebClient):
    """slack_sdk's WebClient sending each request over a pooled keep-alive connection.

    slack_sdk (3.x) opens a new urllib connection per call and offers no way to pass a session; this
    replaces only its transport step (`_perform_urllib_http_request_internal`: one request, one answer),
    so its retry handlers, error mapping (SlackApiError with status and headers, Retry-After) and
    timeouts stay as they are. Errors look like urllib's: a failure to connect or send is a URLError,
    a non-2xx answer an HTTPError. Behind a proxy (`proxy`, or HTTPS_PROXY in the environment) it
    falls back to slack_sdk's own transport.

    It also makes one TLS context for its connections (and for the per-request clients Bolt copies from
    it): given none, urllib loads the system's CA certificates again for every HTTPS connection, which
    costs far more CPU than the call itself."""

    def __init__(self, *args: Any, pool: ConnectionPool | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pool = pool or ConnectionPool()
        if self.ssl is None and self.base_url.lower().startswith("https://"):
            self.ssl = ssl.create_default_context()

    def close(self) -> None:
        self.pool.close()

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        if self.proxy or not url.lower().startswith(("http://", "https://")):
            return super()._perform_urllib_http_request_internal(url, req)
        scheme, host = req.type, req.host
        conn = self.pool.take(scheme, host)
        if conn is None:
            conn = self._connect(scheme, host)
        elif conn.timeout != self.timeout:  # opened by a client of the pool with another timeout
            conn.timeout = self.timeout
            if conn.sock is not None:
                conn.sock.settimeout(self.timeout)
        try:
            try:
                conn.request(req.get_method(), req.selector, body=req.data, headers=dict(req.header_items()))
            except OSError as err:  # as urllib reports it, so slack_sdk's ConnectionErrorRetryHandler sees it
                raise URLError(err) from err
            resp = conn.getresponse()
            body = resp.read()
        except BaseException:
            conn.close()
            raise
        self.pool.give_back(scheme, host, conn)
        if not 200 <= resp.status < 300:
            raise HTTPError(url, resp.status, resp.reason, resp.headers, io.BytesIO(body))
        if resp.headers.get_content_type() == "application/gzip":  # as slack_sdk does (admin.analytics.getFile)
            return {"status": resp.status, "headers": resp.headers, "body": body}
        charset = resp.headers.get_content_charset() or "utf-8"
        return {"status": resp.status, "headers": resp.headers, "body": body.decode(charset)}

    def _connect(self, scheme: str, host: str) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(host, timeout=self.timeout, context=self.ssl)
        return http.client.HTTPConnection(host, timeout=self.timeout)


# slack_sdk builds a DEBUG line with each request's parameters and each answer's headers and body whenever
# its logger's *own* level is unset (it tests `logger.level`, not the effective level), emitted or not.
# Its clients get this logger, set to INFO (configure_logging keeps slack_sdk at INFO anyway).
_SDK_LOG = logging.getLogger("slack_sdk.web.base_client")


def make_client(token: str, base_url: str, *, retries: bool = True, timeout: float = 15) -> KeepAliveWebClient:
    """A keep-alive WebClient pointed at `base_url` (SLACK_API_URL) with slack_sdk's retry handlers.

    `retries=False` is for scheduled posts: their dispatcher retries by itself and first looks in the
    channel for what an earlier attempt may have posted, whereas slack_sdk's handlers would send a
    chat.postMessage again after a connection dropped once the post had reached Slack."""
    if _SDK_LOG.level == logging.NOTSET:
        _SDK_LOG.setLevel(logging.INFO)
    return KeepAliveWebClient(
        token=token, base_url=base_url, timeout=timeout, retry_handlers=retry_handlers() if retries else [],
        logger=_SDK_LOG,
    )


def without_resends(client: WebClient) -> WebClient:
    """A client like `client` (sharing its connections) that never sends a request again after a
    connection error or a 5xx, when Slack may have done it; only a 429 is retried (Slack did nothing)."""
    kept = [h for h in client.retry_handlers if isinstance(h, RateLimitErrorRetryHandler)]
    if len(kept) == len(client.retry_handlers):
        return client
    return _like(client, retry_handlers=kept, timeout=client.timeout)


def while_waiting(client: WebClient, timeout: float = WAITING_TIMEOUT) -> WebClient:
    """A client like `client` (sharing its connections) for calls a person waits on with a trigger_id: each
    request is sent once (no retry after a 429, a 5xx or a connection error) and given up after `timeout`."""
    if not client.retry_handlers and client.timeout <= timeout:
        return client
    return _like(client, retry_handlers=[], timeout=timeout)


def _like(client: WebClient, *, retry_handlers: list[RetryHandler], timeout: float) -> KeepAliveWebClient:
    return KeepAliveWebClient(
        token=client.token, base_url=client.base_url, timeout=timeout, ssl=client.ssl, proxy=client.proxy,
        headers=client.headers, logger=client.logger, retry_handlers=retry_handlers,
        pool=client.pool if isinstance(client, KeepAliveWebClient) else None,
    )


@dataclass(frozen=True)
class SlackUser:
    id: str
    team_id: str | None
    name: str
    is_bot: bool
    tz: str | None
    email: str | None  # None unless the app has users:read.email and the person's organization shows it
    is_stranger: bool = False  # Slack Connect: someone of an organization we share no channel with yet
    is_external: bool = False  # Slack Connect: someone of another organization
    enterprise_id: str | None = None  # Enterprise Grid: the organization whose workspaces they belong to

    def from_another_org(self, home_team_id: str | None, home_enterprise_id: str | None = None) -> bool:
        """Whether this person belongs to another Slack organization than the workspace `home_team_id` (of the
        Enterprise Grid organization `home_enterprise_id`, if any): Slack marks them external or a stranger, or
        they are of another Grid organization, or, when the organizations are not known, their team is another
        one. A colleague from another workspace of the same Grid organization is not of another organization."""
        if self.is_stranger or self.is_external:
            return True
        if self.enterprise_id and home_enterprise_id:
            return self.enterprise_id != home_enterprise_id
        return bool(self.team_id and home_team_id and self.team_id != home_team_id)


class SlackGateway:
    """Typed, scope-checked access to the Web API for the services."""

    def __init__(self, client: WebClient, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.sleep = sleep  # between looks for something Slack may have done (tests pass a clock's)
        # For calls that must not happen twice: no blind re-send after a lost answer or a 5xx.
        self.once_client = without_resends(client)
        # For calls a person waits on with a trigger_id (opening a form): sent once, given up after a few seconds.
        self.waiting_client = while_waiting(client)
        self._bot_user_id: str | None = None

    # -- plumbing -------------------------------------------------------------------------------
    def _call(self, method: str, *, json_body: bool = False, once: bool = False, waiting: bool = False,
              **args: Any) -> dict[str, Any]:
        """`once`: through `once_client`, for a call the caller makes safe to repeat by looking first.
        `waiting`: through `waiting_client`, for a call made while a trigger_id ticks (no retries, a short cap)."""
        if method not in METHOD_SCOPES:
            raise ValueError(f"{method} is not declared in METHOD_SCOPES (and so not in manifest.yml)")
        payload = {k: v for k, v in args.items() if v is not None}
        client = self.waiting_client if waiting else self.once_client if once else self.client
        try:
            if json_body:
                response = client.api_call(method, json=payload)
            else:
                response = client.api_call(method, params=payload)
        except SlackApiError as exc:
            raise _to_slack_error(method, exc) from None
        except (SlackClientError, OSError, http.client.HTTPException) as exc:
            log.warning("Slack %s failed: %s", method, type(exc).__name__)
            raise SlackError(method, "connection_error") from None
        return dict(response.data) if isinstance(response.data, dict) else {}

    # -- identity ------------------------------------------------------------------------------
    def auth_test(self) -> dict[str, Any]:
        data = self._call("auth.test")
        self._bot_user_id = str(data.get("user_id") or "") or None
        return data

    def bot_user_id(self) -> str:
        """The bot's own user id (asked once with auth.test)."""
        if self._bot_user_id is None:
            self.auth_test()
        return self._bot_user_id or ""

    def user_info(self, user_id: str, *, waiting: bool = False) -> SlackUser:
        """A person as Slack shows them. `waiting`: asked while a person waits for a form (sent once, no retry)."""
        user = self._call("users.info", waiting=waiting, user=user_id).get("user", {})
        profile = user.get("profile") or {}
        return SlackUser(
            id=user.get("id", user_id),
            team_id=user.get("team_id"),
            name=profile.get("display_name") or user.get("real_name") or user.get("name") or user_id,
            is_bot=bool(user.get("is_bot")),
            tz=user.get("tz"),
            email=profile.get("email") or None,
            is_stranger=bool(user.get("is_stranger")),
            is_external=bool(user.get("is_external")),
            enterprise_id=(user.get("enterprise_user") or {}).get("enterprise_id") or user.get("enterprise_id") or None,
        )

    # -- channels ------------------------------------------------------------------------------
    def create_channel(self, name: str, *, is_private: bool, in_use: Callable[[str], bool]) -> dict[str, Any]:
        """Create a channel, once: conversations.create is never sent again blindly, and a name Slack calls
        taken is looked up first. A channel of that name is adopted when our bot created it, its privacy is
        the one asked for, and `in_use(channel_id)` says nothing uses it yet (it was made by a call whose
        answer was lost, now or on an earlier attempt); any other channel of that name means the name is
        taken. When Slack may have created it (`SlackError.maybe_done`) but the channel list does not show
        it after a few looks, raises SlackError CREATION_UNCONFIRMED rather than `name_taken`, so that the
        caller does not move on to another name and leave this one orphaned. Raises SlackError."""
        maybe_created = False
        error: SlackError | None = None
        for _ in range(ONCE_TRIES):
            try:
                return self._call("conversations.create", once=True, name=name, is_private=is_private)["channel"]
            except SlackError as exc:
                if not (exc.maybe_done or exc.code == "name_taken"):
                    raise
                maybe_created = maybe_created or exc.maybe_done
                error = exc
            channel = self._find_own_channel(name, is_private=is_private, in_use=in_use, patient=maybe_created)
            if channel is not None:
                log.info("conversations.create: adopting %s, created by a call whose answer was lost", channel["id"])
                return channel
            if error.code == "name_taken":
                if maybe_created:  # ours, most likely, but Slack's list does not show it (yet)
                    raise SlackError("conversations.create", CREATION_UNCONFIRMED)
                raise error  # by a channel the bot cannot see
            # Slack did not create it: try again
        assert error is not None
        raise error

    def _find_own_channel(self, name: str, *, is_private: bool, in_use: Callable[[str], bool],
                          patient: bool) -> dict[str, Any] | None:
        """The channel called `name` if the bot may adopt it; None if the list does not show one (looking
        again after CREATE_LOOKUP_DELAYS when `patient`: a new channel may take a moment to be listed).
        Raises SlackError `name_taken` when the channel exists but is someone else's or in use."""
        for delay in (*(CREATE_LOOKUP_DELAYS if patient else ()), None):
            channel = self.find_channel(name)
            if channel is not None:
                if (channel.get("creator") == self.bot_user_id() and bool(channel.get("is_private")) == is_private
                        and not in_use(str(channel["id"]))):
                    return channel
                raise SlackError("conversations.create", "name_taken")
            if delay is not None:
                self.sleep(delay)
        return None

    def find_channel(self, name: str) -> dict[str, Any] | None:
        """The unarchived public channel, or private channel the bot is in, called `name`, if any."""
        channels = self._pages("conversations.list", "channels", max_pages=CHANNEL_LIST_MAX_PAGES,
                               types="public_channel,private_channel", exclude_archived=True, limit=CHANNEL_LIST_PAGE)
        return next((c for c in channels if c.get("name") == name), None)

    def invite(self, channel: str, user_ids: Sequence[str]) -> list[tuple[str, str]]:
        """Invite users in batches; returns (user_id, error) for those Slack refused."""
        refused: list[tuple[str, str]] = []
        ids = list(dict.fromkeys(user_ids))
        for start in range(0, len(ids), INVITE_BATCH):
            batch = ids[start : start + INVITE_BATCH]
            try:
                # force: Slack invites the valid ones and lists the others in `errors`.
                data = self._call("conversations.invite", channel=channel, users=",".join(batch), force=True)
                refused.extend((e.get("user", "?"), e.get("error", "unknown_error")) for e in data.get("errors") or []
                               if e.get("error") != "already_in_channel")
            except SlackError as exc:
                if exc.code == "already_in_channel":
                    continue
                if len(batch) == 1 or exc.transient:
                    refused.extend((uid, exc.code) for uid in batch)
                    continue
                # One bad id fails the batch: retry one by one to find it and invite the rest.
                for uid in batch:
                    try:
                        self._call("conversations.invite", channel=channel, users=uid)
                    except SlackError as single:
                        if single.code != "already_in_channel":
                            refused.append((uid, single.code))
        return refused

    def invite_shared(self, channel: str, email: str) -> str | None:
        """One Slack Connect invitation (Slack takes one email per call); returns the invite id. Sent once: a
        5xx or a lost answer may mean the invitation went out, and a second one would reach the person twice
        (the failure is recorded on the invitation, and the owner can send it again)."""
        return self._call("conversations.inviteShared", once=True, channel=channel, emails=email).get("invite_id")

    def kick(self, channel: str, user_id: str) -> None:
        self._call("conversations.kick", channel=channel, user=user_id)

    def archive(self, channel: str) -> None:
        self._call("conversations.archive", channel=channel)

    def set_topic(self, channel: str, topic: str) -> None:
        self._call("conversations.setTopic", channel=channel, topic=topic)

    def set_purpose(self, channel: str, purpose: str) -> None:
        self._call("conversations.setPurpose", channel=channel, purpose=purpose)

    def open_dm(self, user_id: str) -> str:
        """The id of the bot's direct-message channel with a person."""
        return str(self._call("conversations.open", users=user_id)["channel"]["id"])

    def _pages(self, method: str, key: str, *, max_pages: int, **args: Any) -> Iterator[dict[str, Any]]:
        """The items of a paginated method, fetched page by page as the caller iterates (one who stops
        early fetches no more), following the cursor: Slack may return fewer than `limit` items a page
        even when there are more, and some methods say so only with `next_cursor`, not `has_more`."""
        cursor: str | None = None
        for _ in range(max_pages):
            data = self._call(method, cursor=cursor, **args)
            yield from data.get(key) or []
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return

    def history(
        self, channel: str, *, oldest: str | None = None, limit: int = 200, max_pages: int = 20
    ) -> Iterator[dict[str, Any]]:
        """Top-level messages newer than `oldest`, newest first, with their metadata (fetched lazily)."""
        return self._pages("conversations.history", "messages", max_pages=max_pages, channel=channel,
                           oldest=oldest, limit=limit, include_all_metadata=True)

    def thread(
        self, channel: str, thread_ts: str, *, limit: int = 200, max_pages: int = 20
    ) -> Iterator[dict[str, Any]]:
        """A thread's messages (the parent first), with their metadata (fetched lazily)."""
        return self._pages("conversations.replies", "messages", max_pages=max_pages, channel=channel,
                           ts=thread_ts, limit=limit, include_all_metadata=True)

    def find_keyed(
        self, channel: str, key: str, *, thread_ts: str | None = None, oldest: str | None = None,
        limit: int = 200, max_pages: int = 20,
    ) -> dict[str, Any] | None:
        """The message whose metadata carries `key` (`keyed_metadata`): in the thread of `thread_ts`, or
        among the channel's top-level messages newer than `oldest`, newest first. Stops paging once found."""
        if thread_ts:
            messages = self.thread(channel, thread_ts, limit=limit, max_pages=max_pages)
        else:
            messages = self.history(channel, oldest=oldest, limit=limit, max_pages=max_pages)
        return next((m for m in messages if message_key(m.get("metadata")) == key), None)

    # -- messages ------------------------------------------------------------------------------
    def post(
        self,
        channel: str,
        *,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
        key: str | None = None,
    ) -> str:
        """Post a message; returns its ts. With `key` (instead of `metadata`), exactly once: the key goes
        into the message metadata, and when Slack may have posted it although the call failed (the
        answer was lost, a 5xx) the channel or thread is searched for the key before posting again, at
        most ONCE_TRIES times. A user id as `channel` then means the app's direct message with them."""
        if key is None:
            return self._post(channel, text=text, blocks=blocks, thread_ts=thread_ts, metadata=metadata)
        if metadata is not None:
            raise ValueError("post: pass either key or metadata")
        if channel[:1] in ("U", "W"):
            channel = self.open_dm(channel)  # history is read by channel id
        error: SlackError | None = None
        for _ in range(ONCE_TRIES):
            try:
                return self._post(channel, text=text, blocks=blocks, thread_ts=thread_ts,
                                  metadata=keyed_metadata(key), once=True)
            except SlackError as exc:
                if not exc.maybe_done:
                    raise
                error = exc
            found = self.find_keyed(channel, key, thread_ts=thread_ts, limit=RECENT_MESSAGES,
                                    max_pages=20 if thread_ts else 1)
            if found is not None:
                log.info("chat.postMessage: %s was posted although the call failed; adopting it", key)
                return str(found["ts"])
        assert error is not None
        raise error

    def _post(
        self, channel: str, *, text: str, blocks: list[dict[str, Any]] | None, thread_ts: str | None,
        metadata: dict[str, Any] | None, once: bool = False,
    ) -> str:
        data = self._call(
            "chat.postMessage",
            json_body=True,
            once=once,
            channel=channel,
            text=text,
            blocks=blocks,
            thread_ts=thread_ts,
            metadata=metadata,
            unfurl_links=False,
            unfurl_media=False,
        )
        return str(data["ts"])

    def update(self, channel: str, ts: str, *, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        self._call("chat.update", json_body=True, channel=channel, ts=ts, text=text, blocks=blocks)

    def permalink(self, channel: str, ts: str) -> str:
        """A link to a message (for a button that takes a person to it)."""
        return str(self._call("chat.getPermalink", channel=channel, message_ts=ts)["permalink"])

    def pin(self, channel: str, ts: str) -> None:
        try:
            self._call("pins.add", channel=channel, timestamp=ts)
        except SlackError as exc:
            if exc.code != "already_pinned":
                raise

    def send_file(self, user_id: str, *, filename: str, content: bytes, title: str, comment: str) -> str:
        """Share a file with one person, privately, in their direct message with the app (Slack's upload v2:
        files.getUploadURLExternal, the upload, files.completeUploadExternal, through slack_sdk's
        `files_upload_v2`); returns the file id. Raises SlackError."""
        for method in ("files.getUploadURLExternal", "files.completeUploadExternal"):
            if method not in METHOD_SCOPES:
                raise ValueError(f"{method} is not declared in METHOD_SCOPES (and so not in manifest.yml)")
        channel = self.open_dm(user_id)
        try:
            response = self.client.files_upload_v2(channel=channel, filename=filename, content=content, title=title,
                                                   initial_comment=comment)
        except SlackApiError as exc:
            raise _to_slack_error("files.upload", exc) from None
        except (SlackClientError, OSError, http.client.HTTPException) as exc:
            log.warning("Slack file upload failed: %s", type(exc).__name__)
            raise SlackError("files.upload", "connection_error") from None
        return str((response.get("file") or {}).get("id", ""))

    # -- views ---------------------------------------------------------------------------------
    def open_view(self, trigger_id: str, view: dict[str, Any]) -> dict[str, Any]:
        """Open a form. Sent once, without the retry handlers and with a short cap (WAITING_TIMEOUT): its
        trigger_id expires 3 s after the click, so a retry after a 429's Retry-After or a 5xx's back-off would
        only fail with expired_trigger_id while the person waits (they are told to try again instead)."""
        return self._call("views.open", json_body=True, waiting=True, trigger_id=trigger_id,
                          view=view).get("view", {})

    def publish_home(self, user_id: str, view: dict[str, Any]) -> None:
        self._call("views.publish", json_body=True, user_id=user_id, view=view)

    # -- replies to the person who acted -------------------------------------------------------
    def respond(
        self, response_url: str, *, text: str, blocks: list[dict[str, Any]] | None = None,
        replace_original: bool = False,
    ) -> bool:
        """Post an ephemeral reply through a response_url (with the same retry handlers)."""
        client = WebhookClient(url=response_url, timeout=15, retry_handlers=retry_handlers())
        body: dict[str, Any] = {"response_type": "ephemeral", "text": text}
        if blocks is not None:
            body["blocks"] = blocks
        if replace_original:
            body["replace_original"] = True
        try:
            response = client.send_dict(body)
        except (SlackClientError, OSError) as exc:
            log.warning("response_url reply failed: %s", type(exc).__name__)
            return False
        if response.status_code != 200:
            log.warning("response_url reply refused: HTTP %s", response.status_code)
            return False
        return True


def _to_slack_error(method: str, exc: SlackApiError) -> SlackError:
    response = exc.response
    status = getattr(response, "status_code", None)
    data = getattr(response, "data", None)
    code = data.get("error", "unknown_error") if isinstance(data, dict) else f"http_{status}"
    retry_after: float | None = None
    headers = getattr(response, "headers", None) or {}
    raw = headers.get("Retry-After") or headers.get("retry-after")
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    if raw is not None:
        try:
            retry_after = float(raw)
        except ValueError:
            retry_after = None
    if status == 429:
        code = "ratelimited"
    return SlackError(method, code, status=status, retry_after=retry_after)
