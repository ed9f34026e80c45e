"""APScheduler 3 as a ticker only: two interval jobs in a memory job store, `plan` and `dispatch`.

The durable state is the `occurrence` table; every replica runs the same ticker, and the dispatcher's
claims make sure each occurrence runs once. APScheduler never shares a job store between processes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import SQLAlchemyError

from jobs.executors import Planner
from services.scheduling import Dispatcher, collection_paused

log = logging.getLogger(__name__)

PLAN_SECONDS = 300


class Ticker:
    def __init__(
        self, dispatcher: Dispatcher, planners: Mapping[str, Planner], *, tick_seconds: float,
        plan_seconds: float = PLAN_SECONDS,
    ) -> None:
        self.dispatcher = dispatcher
        self.planners = dict(planners)
        self.tick_seconds = tick_seconds
        self.plan_seconds = plan_seconds
        self._scheduler: BackgroundScheduler | None = None

    def plan(self) -> None:
        now = self.dispatcher.clock.now()
        with collection_paused():
            for name, planner in self.planners.items():
                try:
                    planner(now)
                except SQLAlchemyError as exc:  # the next run tries again
                    log.warning("planning %s failed: %s", name, exc.__class__.__name__)

    def dispatch(self) -> None:
        try:
            self.dispatcher.tick()
        except SQLAlchemyError as exc:
            log.warning("dispatching failed: %s", exc.__class__.__name__)

    def start(self) -> Ticker:
        scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 2, "misfire_grace_time": None},
        )
        now = datetime.now(UTC)
        scheduler.add_job(self.plan, "interval", seconds=self.plan_seconds, next_run_time=now, id="plan")
        scheduler.add_job(self.dispatch, "interval", seconds=self.tick_seconds, next_run_time=now, id="dispatch")
        scheduler.start()
        self._scheduler = scheduler
        log.info("scheduler %s started (tick every %ss)", self.dispatcher.worker_id, self.tick_seconds)
        return self

    def nudge(self, at: datetime | None = None) -> None:
        """Run a dispatch tick now (after a write that planned something due now), or at `at` (something is due
        then, sooner than the next tick) unless one runs by then anyway."""
        if self._scheduler is None or not self._scheduler.running:
            return
        if at is not None:
            job = self._scheduler.get_job("dispatch")
            if job is None or (job.next_run_time is not None and job.next_run_time <= at):
                return
        self._scheduler.modify_job("dispatch", next_run_time=at or datetime.now(UTC))

    def stop(self) -> None:
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self.dispatcher.shutdown(wait=True)
