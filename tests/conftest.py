"""Shared fixtures: databases (SQLite files; PostgreSQL from a throwaway cluster) and settings."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from config.settings import Settings
from models.db import make_engine
from models.migrate import upgrade
from tests.support.pgcluster import ClusterUnavailable, PgCluster

REQUIRE_POSTGRES = os.environ.get("PARTNERBOT_REQUIRE_POSTGRES") == "1"


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


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    """A migrated SQLite database."""
    yield from _migrated(sqlite_url)


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
