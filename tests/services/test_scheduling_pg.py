"""Leases on PostgreSQL are kept on the database's clock: a replica whose own clock is minutes off can neither
take over a live lease nor run work early."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from adapters.slack import SlackGateway, make_client
from models.db import make_uow
from services.scheduling import Dispatcher, Executor, MisfirePolicy, insert_new
from tests.support.clock import FrozenClock

KIND = "toy"


def _db_now(engine: Engine) -> datetime:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.now())).scalar_one()  # type: ignore[no-any-return]


def _replica(engine: Engine, name: str, skew: timedelta) -> Dispatcher:
    """A dispatcher whose clock is `skew` off the database's (it never reaches Slack in these tests)."""
    never = Executor(lambda occ, ctx: pytest.fail("nothing runs here"), MisfirePolicy(grace=None))
    return Dispatcher(uow=make_uow(engine), slack=SlackGateway(make_client("xoxb-test", "http://127.0.0.1:9/api/")),
                      clock=FrozenClock(datetime.now(UTC) + skew), executors={KIND: never}, worker_id=name)


@pytest.mark.parametrize("skew_minutes", [2, -2])
def test_a_replica_with_a_skewed_clock_cannot_take_over_a_live_lease_or_run_early(
    pg_engine: Engine, skew_minutes: int,
) -> None:
    now = _db_now(pg_engine)
    with make_uow(pg_engine)() as s:
        insert_new(s, [{"key": "due", "kind": KIND, "subject_id": 1, "due_at": now - timedelta(seconds=1)},
                       {"key": "soon", "kind": KIND, "subject_id": 1, "due_at": now + timedelta(seconds=60)}], now)
    holder = _replica(pg_engine, "holder", timedelta(0))
    skewed = _replica(pg_engine, "skewed", timedelta(minutes=skew_minutes))
    try:
        [claim] = holder.claim(10)
        assert claim.occ.key == "due"
        # The lease runs two minutes on the database's clock, whatever the claimer's clock says.
        assert abs((claim.occ.lease_until or now) - (now + holder.lease)) < timedelta(seconds=30)
        assert skewed.claim(10) == []  # neither the live lease nor the row due in a minute
    finally:
        holder.shutdown()
        skewed.shutdown()
