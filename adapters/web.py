"""The HTTP side: a WSGI app that serves Slack's requests and the health check, on waitress
(a production multi-threaded WSGI server).

A request to the Slack endpoint reaches Bolt only through `adapters.inbound.SlackRequestGate`: the body
is read up to its cap, and refused (413, 401 or 400, with a JSON reason and one log line that holds
nothing from the body) unless it is a signed Slack request of the right shape. Bolt then gets the very
same bytes.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress.server import create_server

from adapters.inbound import MAX_BODY_BYTES, TOO_LARGE, Rejection, SlackRequestGate, bolt_body

log = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"
HEALTH_PATH = "/healthz"

HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]


def make_wsgi_app(
    bolt_app: App | None, health: HealthCheck, *, signing_secret: str | None = None,
) -> Callable[..., Iterable[bytes]]:
    """Route POST /slack/events through the gate to Bolt (bolt_app None: Socket Mode, not served, and no
    signing secret needed) and GET /healthz to `health`."""
    slack = None
    if bolt_app is not None:
        slack = SlackRequestHandler(bolt_app, path=SLACK_PATH), SlackRequestGate(signing_secret or "")

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            ok, report = health()
            body = _respond(start_response, "200 OK" if ok else "503 Service Unavailable", report)
            return [body] if method == "GET" else [b""]
        if path == SLACK_PATH and slack is not None:
            if method != "POST":
                return [_respond(start_response, "405 Method Not Allowed", {"error": "use POST"}, [("Allow", "POST")])]
            return _serve_slack(*slack, environ, start_response)
        return [_respond(start_response, "404 Not Found", {"error": "not found"})]

    return wsgi


def _serve_slack(
    handler: SlackRequestHandler, gate: SlackRequestGate, environ: dict[str, Any], start_response: Callable[..., Any],
) -> Iterable[bytes]:
    body, rejection = _read_body(environ)
    rejection = rejection or gate.check(
        body, timestamp=environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP"), signature=environ.get("HTTP_X_SLACK_SIGNATURE"),
        content_type=environ.get("CONTENT_TYPE"),
    )
    if rejection is not None:
        log.info("refused a request from %s: %s %s", environ.get("REMOTE_ADDR", "?"), rejection.status,
                 rejection.reason)
        return [_respond(start_response, _STATUS[rejection.status], {"error": rejection.reason})]
    body = bolt_body(body, environ.get("CONTENT_TYPE"))
    return handler({**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}, start_response)


_STATUS = {400: "400 Bad Request", 401: "401 Unauthorized", 413: "413 Content Too Large"}


def _read_body(environ: dict[str, Any]) -> tuple[bytes, Rejection | None]:
    """The body, read (never past its declared length, as PEP 3333 asks) only when that is within the cap."""
    declared = environ.get("CONTENT_LENGTH") or "0"
    if not (declared.isascii() and declared.isdigit()):
        return b"", Rejection(400, "the Content-Length header is not a number")
    if int(declared) > MAX_BODY_BYTES:
        return b"", TOO_LARGE
    return environ["wsgi.input"].read(int(declared)), None


def _respond(
    start_response: Callable[..., Any], status: str, payload: Any, headers: list[tuple[str, str]] | None = None,
) -> bytes:
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                            *(headers or [])])
    return body


class WebServer:
    """waitress in a background thread; `close()` finishes in-flight requests and stops."""

    def __init__(self, wsgi: Callable[..., Iterable[bytes]], *, host: str, port: int, threads: int = 8) -> None:
        self._server: Any = create_server(
            wsgi, host=host, port=port, threads=threads, ident="partnerbot", channel_timeout=30,
            cleanup_interval=10, clear_untrusted_proxy_headers=True,
            # waitress answers 413 itself, before buffering the body, when it declares more (it refuses
            # a length >= this); make_wsgi_app checks again for any other server.
            max_request_body_size=MAX_BODY_BYTES + 1,
        )
        self._closing = False
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)

    def _serve(self) -> None:
        try:
            self._server.run()
        except (OSError, ValueError):
            # close() from another thread pulls the sockets out from under waitress's select loop.
            if not self._closing:
                raise

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    @property
    def url(self) -> str:
        return f"http://{self._server.effective_host}:{self.port}"

    def start(self) -> WebServer:
        self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        self._closing = True
        self._server.task_dispatcher.shutdown()  # finish the requests being served
        trigger = self._server.trigger
        if self._thread.is_alive() and not trigger._closed:
            # Close the sockets on the loop's own thread: the trigger wakes its select at once, and with no
            # socket left the loop ends. Closed from here instead, the loop would sleep out its select
            # timeout (waitress's asyncore_loop_timeout, a whole second) before it noticed.
            try:
                trigger.pull_trigger(self._close_sockets)
            except OSError:  # the trigger's pipe is already gone (waitress closes it on a read error)
                log.warning("could not wake the HTTP server's loop to stop it; closing its sockets from here")
            else:
                self._thread.join(timeout)
        self._close_sockets()  # not started, the trigger gone, or the loop did not answer in time

    def _close_sockets(self) -> None:
        self._server.close()
        for channel in list(self._server._map.values()):  # the loop's other sockets (waitress has no API)
            channel.close()
