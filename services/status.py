"""The process health report behind GET /healthz."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from models.db import ping

log = logging.getLogger(__name__)

StatusProvider = Callable[[], dict[str, Any]]


def health_report(engine: Engine, providers: dict[str, StatusProvider] | None = None) -> tuple[bool, dict[str, Any]]:
    """(healthy, report): healthy when the database answers and every provider can report."""
    db_ok = ping(engine)
    report: dict[str, Any] = {"status": "ok" if db_ok else "unavailable", "database": "ok" if db_ok else "unreachable"}
    healthy = db_ok
    if db_ok:
        for name, provider in (providers or {}).items():
            try:
                report[name] = provider()
            except SQLAlchemyError as exc:  # e.g. a table missing: the database is not migrated
                log.warning("health check of %s failed: %s", name, exc.__class__.__name__)
                report[name] = {"error": exc.__class__.__name__}
                healthy = False
        report["status"] = "ok" if healthy else "unavailable"
    return healthy, report
