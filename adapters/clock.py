"""Time source. Services take a Clock so tests can freeze and advance time without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The real clock, in aware UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)
