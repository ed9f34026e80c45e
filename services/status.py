"""The process health report behind GET /healthz."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from models.db import ping

StatusProvider = Callable[[], dict[str, Any]]


def health_report(engine: Engine, providers: dict[str, StatusProvider] | None = None) -> tuple[bool, dict[str, Any]]:
    """(healthy, report): healthy when the database answers."""
    db_ok = ping(engine)
    report: dict[str, Any] = {"status": "ok" if db_ok else "unavailable", "database": "ok" if db_ok else "unreachable"}
    if db_ok:
        for name, provider in (providers or {}).items():
            report[name] = provider()
    return db_ok, report
