"""The engine gives up quickly on a database that does not answer, so a request can still answer the person
within Slack's 3 seconds."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy.exc import OperationalError

from models.db import PG_CONNECT_TIMEOUT_S, make_engine


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port whose kernel accepts connections but where no PostgreSQL ever answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_connecting_to_a_postgresql_that_does_not_answer_fails_within_seconds(silent_server: int) -> None:
    engine = make_engine(f"postgresql+psycopg://partnerbot:x@127.0.0.1:{silent_server}/partnerbot")
    outcome: list[BaseException | None] = []

    def connect() -> None:
        try:
            engine.connect().close()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    started = time.monotonic()
    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout=PG_CONNECT_TIMEOUT_S * 5)  # without a timeout libpq waits forever
    assert outcome, "the connection attempt was still waiting"
    assert isinstance(outcome[0], OperationalError) and "timeout" in str(outcome[0]).lower()
    assert time.monotonic() - started < PG_CONNECT_TIMEOUT_S * 5
    engine.dispose()
