"""A thread pool that can tell when every listener it ran has finished (no polling, no sleeps)."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class TrackingExecutor(ThreadPoolExecutor):
    def __init__(self, max_workers: int = 5) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix="listener")
        self._pending: set[Future[Any]] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[Any]) -> None:
        with self._idle:
            self._pending.discard(future)
            self._idle.notify_all()

    def wait_idle(self, timeout: float = 30.0) -> None:
        with self._idle:
            if not self._idle.wait_for(lambda: not self._pending, timeout):
                raise TimeoutError(f"{len(self._pending)} listener(s) still running after {timeout}s")
