"""Work a listener hands on after its ack: it runs off Bolt's pool, its failures are logged, and a bot that
shuts down first finishes what it already acknowledged."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import build
from handlers.common import after_ack
from tests.conftest import make_settings
from tests.support.clock import FrozenClock
from tests.support.stack import new_fake


def test_a_failure_after_the_ack_is_logged_not_lost(caplog: pytest.LogCaptureFixture) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool, caplog.at_level(logging.ERROR, logger="handlers.common"):
        after_ack(pool, lambda: 1 / 0)
    assert "work after an ack failed" in caplog.text and "ZeroDivisionError" in caplog.text


def test_closing_the_bot_finishes_the_work_already_acknowledged(tmp_path: Path) -> None:
    clock = FrozenClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    fake = new_fake(clock)
    try:
        bot = build(make_settings(slack_api_url=fake.base_url, database_url=f"sqlite:///{tmp_path / 'pb.db'}"),
                    clock=clock)
        release, finished = threading.Event(), threading.Event()
        stop_ticker = bot.ticker.stop

        def stop_then_release() -> None:  # the vote goes on once the bot has started closing
            stop_ticker()
            release.set()

        bot.ticker.stop = stop_then_release  # type: ignore[method-assign]

        def acknowledged_vote() -> None:  # still saving when the rest of the bot is done closing
            assert release.wait(10)
            time.sleep(0.3)
            finished.set()

        after_ack(bot.services.after_ack, acknowledged_vote)
        bot.close()
        assert finished.is_set()  # close() returned only after the acknowledged work was done
    finally:
        fake.stop()
