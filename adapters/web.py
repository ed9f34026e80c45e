"""The HTTP side: a WSGI app that serves Slack's requests and the health check, on waitress
(a production multi-threaded WSGI server)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress.server import create_server

log = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"
HEALTH_PATH = "/healthz"

HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]


def make_wsgi_app(bolt_app: App | None, health: HealthCheck) -> Callable[..., Iterable[bytes]]:
    """Route POST /slack/events to Bolt (None: Socket Mode, not served) and GET /healthz to `health`."""
    slack_handler = SlackRequestHandler(bolt_app, path=SLACK_PATH) if bolt_app is not None else None

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            ok, report = health()
            body = json.dumps(report).encode()
            status = "200 OK" if ok else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body] if method == "GET" else [b""]
        if path == SLACK_PATH and slack_handler is not None:
            return slack_handler(environ, start_response)
        body = b"Not Found"
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return wsgi


class WebServer:
    """waitress in a background thread; `close()` finishes in-flight requests and stops."""

    def __init__(self, wsgi: Callable[..., Iterable[bytes]], *, host: str, port: int, threads: int = 8) -> None:
        self._server: Any = create_server(
            wsgi, host=host, port=port, threads=threads, ident="partnerbot", channel_timeout=30,
            cleanup_interval=10, clear_untrusted_proxy_headers=True,
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
        self._server.close()
        for channel in list(self._server._map.values()):  # the loop's other sockets (waitress has no API)
            channel.close()
        self._thread.join(timeout)
