"""Shared fixtures: databases (SQLite files; PostgreSQL from a throwaway cluster) and settings."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from config.settings import Settings
from models.db import make_engine
from models.migrate import upgrade
from tests.support.pgcluster import ClusterUnavailable, PgCluster

REQUIRE_POSTGRES = os.environ.get("PARTNERBOT_REQUIRE_POSTGRES") == "1"
# Run first: the longest file (about 50 s, mostly waiting for worker processes and their leases). On
# parallel workers (make test) it would otherwise start halfway through and run on alone at the end.
RUN_FIRST = ("tests/integration/",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not item.nodeid.startswith(RUN_FIRST))  # stable: the order within stays


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    try:
        cluster = PgCluster().start()
    except ClusterUnavailable as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required here (PARTNERBOT_REQUIRE_POSTGRES=1) but: {exc}")
        pytest.skip(f"no PostgreSQL cluster: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A fresh, empty PostgreSQL database."""
    return pg_cluster.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'partnerbot.db'}"


def _migrated(url: str) -> Iterator[Engine]:
    eng = make_engine(url)
    upgrade(eng)
    yield eng
    eng.dispose()


@functools.cache
def _migrated_template() -> Path:
    """A SQLite file at the migrations' head, made once per test process (each worker has its own)."""
    folder = Path(tempfile.mkdtemp(prefix="partnerbot-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "migrated.db"
    eng = make_engine(f"sqlite:///{path}")
    upgrade(eng)
    eng.dispose()  # the last connection closed: SQLite folds the write-ahead log into the file
    assert not path.with_name(path.name + "-wal").exists(), "the template's write-ahead log was left behind"
    return path


def migrated_sqlite_url(path: Path) -> str:
    """The URL of a migrated SQLite database at `path`. A new one is a copy of the template rather than a
    run of every migration (about 0.1 s, in each of hundreds of tests); one already there (a bot restarting
    on it) is kept as it is. `upgrade` or `bot.build` on it finds nothing to do; tests/models/test_migrations.py
    runs the migrations themselves."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_migrated_template(), path)
    return f"sqlite:///{path}"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite database."""
    yield from _migrated(migrated_sqlite_url(tmp_path / "partnerbot.db"))


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """A migrated, fresh PostgreSQL database."""
    yield from _migrated(pg_url)


def make_settings(**overrides: object) -> Settings:
    """Settings for tests, ignoring any .env file and the process environment."""
    values: dict[str, object] = {
        "slack_bot_token": "xoxb-test",
        "slack_signing_secret": "test-signing-secret",
        "database_url": "sqlite:///:memory:",
        "host": "127.0.0.1",
        "port": 3000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]
