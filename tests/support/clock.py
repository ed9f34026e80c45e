"""A frozen clock that tests advance by hand (no sleeping)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class FrozenClock:
    def __init__(self, start: datetime) -> None:
        assert start.tzinfo is not None, "use an aware datetime"
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def epoch(self) -> float:
        """For the fake Slack's message timestamps, so they agree with this clock."""
        return self.now().timestamp()

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment.astimezone(UTC)

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        with self._lock:
            self._now += delta if delta is not None else timedelta(**kwargs)
            return self._now
