"""When an event happened and whether Slack is delivering it again, as the channel listeners read them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from handlers.common import event_time, retry_num


@pytest.mark.parametrize(("event", "body", "when"), [
    ({"event_ts": "1772442000.000200"}, {"event_time": 1}, datetime(2026, 3, 2, 9, 0, 0, 200, tzinfo=UTC)),
    ({"event_ts": "1772442000.5"}, {}, datetime(2026, 3, 2, 9, 0, 0, 500000, tzinfo=UTC)),
    ({"event_ts": "1772442000"}, {}, datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
    ({}, {"event_time": 1772442000}, datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),  # Slack's docs example has no event_ts
    ({"event_ts": "soon"}, {"event_time": "1772442000"}, None),
    ({"event_ts": ""}, {"event_time": True}, None),
    ({}, {}, None),
])
def test_event_time_is_read_exactly_or_not_at_all(event: dict[str, Any], body: dict[str, Any],
                                                  when: datetime | None) -> None:
    assert event_time(event, body) == when


def test_two_events_a_microsecond_apart_keep_their_order() -> None:
    earlier = event_time({"event_ts": "1772442000.999998"}, {})
    later = event_time({"event_ts": "1772442000.999999"}, {})
    assert earlier is not None and later is not None and earlier < later


@pytest.mark.parametrize(("headers", "n"), [
    ({"x-slack-retry-num": ["2"], "x-slack-retry-reason": ["http_timeout"]}, 2),  # as Bolt keeps headers
    ({"x-slack-retry-num": "1"}, 1),
    ({}, 0), (None, 0), ({"x-slack-retry-num": ["x"]}, 0),
])
def test_retry_num(headers: dict[str, Any] | None, n: int) -> None:
    assert retry_num(headers) == n
