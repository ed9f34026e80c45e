"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl on a free loopback port, in a directory of its own.
Each test process starts its own (one per pytest-xdist worker), so parallel runs never share one.

Used by the `pg_url` fixture. When PARTNERBOT_REQUIRE_POSTGRES=1 (set by .ci/run) a cluster that
cannot start is an error, not a skip.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PORT_ATTEMPTS = 3  # free ports to try: between choosing one and the server binding it, another process may take it


class ClusterUnavailable(Exception):
    pass


def find_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    def __init__(self) -> None:
        self.initdb = find_bin("initdb")
        self.pg_ctl = find_bin("pg_ctl")
        if not self.initdb or not self.pg_ctl:
            raise ClusterUnavailable("initdb/pg_ctl not found (install the PostgreSQL server binaries)")
        self.root = Path(tempfile.mkdtemp(prefix="partnerbot-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self.as_root:  # initdb refuses to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    def start(self) -> PgCluster:
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        result = self._run(self.initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        if result.returncode != 0:
            raise ClusterUnavailable(f"initdb failed: {result.stderr.strip()[-500:]}")
        for attempt in range(1, PORT_ATTEMPTS + 1):
            opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=200"
            log_path = self.root / f"log-{attempt}"
            result = self._run(self.pg_ctl, "-D", str(self.data), "-o", opts, "-l", str(log_path), "-w", "start")
            if result.returncode == 0:
                return self
            log = log_path.read_text() if log_path.exists() else ""
            if "could not bind" not in log or attempt == PORT_ATTEMPTS:
                raise ClusterUnavailable(f"pg_ctl start failed: {result.stderr.strip()[-300:]} {log[-500:]}")
            # Another process (a parallel test worker, another test run) took the free port meanwhile.
            self.port = free_port()
        raise AssertionError("unreachable")  # pragma: no cover

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
