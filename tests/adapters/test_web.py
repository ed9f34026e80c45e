"""The HTTP server's life cycle (adapters.web.WebServer)."""

from __future__ import annotations

import http.client
import socket

import pytest

from adapters.web import WebServer, make_wsgi_app


@pytest.mark.parametrize("client_connected", [False, True])
def test_close_stops_serving_at_once(client_connected: bool) -> None:
    """What SIGTERM and every test's teardown wait for. The serving loop used to sleep out waitress's
    one-second select timeout after its sockets were closed under it, now and then: try a few times."""
    for _ in range(4):
        server = WebServer(make_wsgi_app(None, lambda: (True, {"ok": True})), host="127.0.0.1", port=0,
                           threads=2).start()
        client = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)  # keep-alive: stays open
        if client_connected:
            client.request("GET", "/healthz")
            assert client.getresponse().read() == b'{"ok": true}'

        server.close(timeout=0.5)

        assert not server._thread.is_alive(), "the serving thread was still running half a second later"
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=1):
            pass
        client.close()
