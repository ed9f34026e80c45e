"""A fake of Slack's Socket Mode WebSocket server, on loopback, written with the standard library only.

The app asks the Web API for a WebSocket URL (`apps.connections.open` with its app-level token; the
fake Web API answers with `FakeSocketMode.url`), connects, and gets `{"type": "hello", ...}`. Tests then
push envelopes the way Slack does (`{"envelope_id", "type", "payload", "accepts_response_payload"}`) and
read the acks the app sends back (`{"envelope_id"[, "payload"]}`). WebSocket pings get pongs.

It speaks just enough RFC 6455 for slack_sdk's clients: the opening handshake, text frames (any length,
fragmented or not), ping/pong and close. Frames from the client must be masked; the server's are not.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import socket
import socketserver
import struct
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1((key + _GUID).encode("ascii")).digest()).decode("ascii")  # noqa: S324


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final frame, as a server sends it."""
    head = bytes([0x80 | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([size])
    elif size < 1 << 16:
        head += bytes([126]) + struct.pack("!H", size)
    else:
        head += bytes([127]) + struct.pack("!Q", size)
    return head + payload


class _Closed(Exception):
    """The peer went away (EOF) or broke the protocol."""


class Connection:
    """One accepted WebSocket: frames out (thread-safe) and the read loop."""

    def __init__(self, server: FakeSocketMode, sock: socket.socket, rfile: Any, path: str) -> None:
        self.server = server
        self.sock = sock
        self.rfile = rfile
        self.path = path
        self.open = True
        self._send_lock = threading.Lock()

    def send_frame(self, opcode: int, payload: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(encode_frame(opcode, payload))

    def send_json(self, message: dict[str, Any]) -> None:
        self.send_frame(OP_TEXT, json.dumps(message).encode("utf-8"))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame and drop the TCP connection."""
        if not self.open:
            return
        self.open = False
        try:
            self.send_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode("utf-8"))
        except OSError:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _read_exact(self, size: int) -> bytes:
        data = self.rfile.read(size) if size else b""
        if len(data) < size:
            raise _Closed("end of stream")
        return data

    def _read_frame(self) -> tuple[bool, int, bytes]:
        b1, b2 = self._read_exact(2)
        fin, opcode, masked, size = bool(b1 & 0x80), b1 & 0x0F, bool(b2 & 0x80), b2 & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", self._read_exact(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", self._read_exact(8))
        if not masked:
            raise _Closed("client frames must be masked (RFC 6455 section 5.1)")
        mask = self._read_exact(4)
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(self._read_exact(size)))
        return fin, opcode, data

    def serve(self) -> None:
        """Read frames until the client closes or the server stops."""
        message_op, parts = None, []
        try:
            while self.open:
                fin, opcode, data = self._read_frame()
                if opcode == OP_PING:
                    self.server._note_ping()
                    self.send_frame(OP_PONG, data)
                elif opcode == OP_PONG:
                    continue
                elif opcode == OP_CLOSE:
                    code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1000
                    self.close(code)
                elif opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION):
                    if opcode != OP_CONTINUATION:
                        message_op, parts = opcode, []
                    parts.append(data)
                    if fin:
                        if message_op == OP_TEXT:
                            self.server._received(b"".join(parts).decode("utf-8"))
                        message_op, parts = None, []
        except (_Closed, OSError):
            pass
        finally:
            self.open = False
            self.server._disconnected(self)


class FakeSocketMode:
    """Slack's Socket Mode endpoint: `start()`, give `url` to the fake Web API, then `push()` envelopes."""

    def __init__(self, *, app_id: str = "A0PARTNERBOT") -> None:
        self.app_id = app_id
        self.ticket = uuid.uuid4().hex
        self.connections: list[Connection] = []  # every accepted connection, in order
        self.messages: list[dict[str, Any]] = []  # every JSON text message the app sent
        self.acks: dict[str, dict[str, Any]] = {}  # envelope_id -> the app's ack
        self.pings = 0
        self.refused_handshakes = 0
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._server: socketserver.ThreadingTCPServer | None = None

    # -- life cycle --------------------------------------------------------------------------------
    def start(self) -> FakeSocketMode:
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                fake._handle(self.request, self.rfile)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-socket-mode", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for conn in list(self.connections):
            conn.close(1001, "going away")

    @property
    def url(self) -> str:
        """What `apps.connections.open` returns: ws://…/link/?ticket=…&app_id=… (wss:// at Slack)."""
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"ws://{host}:{port}/link/?ticket={self.ticket}&app_id={self.app_id}"

    # -- what tests do ------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        with self._cond:
            return any(c.open for c in self.connections)

    def wait_connected(self, timeout: float = 5.0) -> Connection:
        """The open connection, once the app has connected (and got its hello)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                conn = self._current()
                if conn is not None:
                    return conn
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the app did not connect to Socket Mode within {timeout}s")
                self._cond.wait(left)

    def push(
        self, envelope_type: str, payload: dict[str, Any], *, accepts_response_payload: bool = True,
        envelope_id: str | None = None,
    ) -> str:
        """Send an envelope on the open connection, as Slack does; returns its envelope_id."""
        envelope_id = envelope_id or f"{next(self._ids):04d}-{uuid.uuid4()}"
        envelope: dict[str, Any] = {"envelope_id": envelope_id, "type": envelope_type, "payload": payload,
                                    "accepts_response_payload": accepts_response_payload}
        if envelope_type == "events_api":
            envelope.update(retry_attempt=0, retry_reason="")
        self.wait_connected().send_json(envelope)
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The app's ack of an envelope, once it arrives."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while envelope_id not in self.acks:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no ack for envelope {envelope_id} within {timeout}s; got {self.messages}")
                self._cond.wait(left)
            return self.acks[envelope_id]

    # -- plumbing -----------------------------------------------------------------------------------
    def _current(self) -> Connection | None:
        return next((c for c in reversed(self.connections) if c.open), None)

    def _handle(self, sock: socket.socket, rfile: Any) -> None:
        request_line = rfile.readline(65537).decode("latin-1").strip()
        headers: dict[str, str] = {}
        while True:
            line = rfile.readline(65537).decode("latin-1")
            if line in ("\r\n", "\n", ""):
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        method, _, rest = request_line.partition(" ")
        target = rest.rsplit(" ", 1)[0]
        query = parse_qs(urlsplit(target).query)
        problem = None
        if method != "GET" or not urlsplit(target).path.startswith("/link"):
            problem = "404 Not Found"
        elif headers.get("upgrade", "").lower() != "websocket" or "sec-websocket-key" not in headers \
                or headers.get("sec-websocket-version") != "13":
            problem = "400 Bad Request"
        elif query.get("ticket") != [self.ticket]:
            problem = "401 Unauthorized"
        if problem is not None:
            with self._cond:
                self.refused_handshakes += 1
            sock.sendall(f"HTTP/1.1 {problem}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            return
        sock.sendall((
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(headers['sec-websocket-key'])}\r\n\r\n"
        ).encode("ascii"))
        conn = Connection(self, sock, rfile, target)
        conn.send_json({"type": "hello", "num_connections": 1,
                        "debug_info": {"host": "fake-socket-mode", "build_number": 1,
                                       "approximate_connection_time": 3600},
                        "connection_info": {"app_id": self.app_id}})
        with self._cond:
            self.connections.append(conn)
            self._cond.notify_all()
        conn.serve()

    def _received(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            message = {"unparsed": text}
        with self._cond:
            self.messages.append(message)
            if isinstance(message, dict) and message.get("envelope_id"):
                self.acks[str(message["envelope_id"])] = message
            self._cond.notify_all()

    def _note_ping(self) -> None:
        with self._cond:
            self.pings += 1

    def _disconnected(self, conn: Connection) -> None:
        with self._cond:
            self._cond.notify_all()
