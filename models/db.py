"""Engine and unit of work.

SQLite: WAL, busy_timeout, foreign keys on, and every transaction starts with BEGIN IMMEDIATE so that a
read-then-write never fails with "database is locked"; a unit of work opened with `read_only=True` starts
with a plain BEGIN instead, so reads never wait for a writer (WAL readers do not block).
PostgreSQL: a pooled psycopg engine whose connects and pool waits give up within seconds, so that a request
still answers the person inside Slack's 3 seconds when the database is down.
Both: SQL parameters never appear in error messages (they hold what people typed, which must not reach
the logs).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

SQLITE_BUSY_TIMEOUT_MS = 10_000
PG_CONNECT_TIMEOUT_S = 2  # libpq's minimum that counts: 2 s
PG_POOL_TIMEOUT_S = 2

UnitOfWork = Callable[..., AbstractContextManager[Session]]  # uow(read_only=False)
_READ_ONLY = "partnerbot_read_only"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Build the engine for a sqlite:/// or postgresql+psycopg:// URL."""
    parsed = make_url(url)
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        _sqlite_pragmas(engine)
        return engine
    if "connect_timeout" not in parsed.query:  # a URL that sets its own keeps it
        kwargs["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_S, **kwargs.get("connect_args", {})}
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, pool_timeout=PG_POOL_TIMEOUT_S,
                         **kwargs)


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE")


def make_uow(engine: Engine) -> UnitOfWork:
    """A factory of units of work: `with uow() as s:` commits on success, rolls back on error.
    `uow(read_only=True)` is for work that only reads (it must not write: on SQLite it holds no write lock)."""
    reader = engine.execution_options(**{_READ_ONLY: True})
    # SQLite has one writer at a time, and a writer that finds the database locked polls with sleeps
    # (busy_timeout). Within the one process SQLite allows, writers queue on a lock instead and start
    # the moment the previous one commits.
    writers = threading.RLock() if engine.dialect.name == "sqlite" else nullcontext()

    @contextmanager
    def uow(read_only: bool = False) -> Iterator[Session]:
        with (nullcontext() if read_only else writers), Session(
            reader if read_only else engine, expire_on_commit=False
        ) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    return uow


def ping(engine: Engine) -> bool:
    """True when the database answers a trivial query."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any driver error means "not healthy"
        return False
