"""A private PostgreSQL cluster, which a reliability test may restart."""

import glob
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..servers import free_port
from ..web import manage


def _pg_bin(name: str) -> str | None:
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(re.search(r"/(\d+)/bin/", p)[1]),  # type: ignore[index]
    )
    return found[-1] if found else None


def _as_postgres(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


class PrivatePostgres:
    """A PostgreSQL cluster of our own on a free port (trust auth), which a test may restart
    without touching the machine's shared server. Databases are cloned from a migrated
    template, so each test gets a fresh one in a second."""

    TEMPLATE = "reliability_template"

    def __init__(self) -> None:
        self.initdb, self.pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        self.psql = _pg_bin("psql") or shutil.which("psql")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="reliability-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        _as_postgres([self.initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres"])
        self.start()

    @property
    def options(self) -> str:
        return f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"

    def _ctl(self, *args: str) -> None:
        _as_postgres(
            [self.pg_ctl, "-D", str(self.data), "-o", self.options, "-l", str(self.log), *args]
        )

    def start(self) -> None:
        self._ctl("start", "-w", "-t", "30")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("stop", "-w", "-m", mode)

    def restart(self, down_for: float = 0.0) -> None:
        """Stop the server (fast: every connection is cut) and start it again."""
        self.stop()
        time.sleep(down_for)  # the outage being tested: the database stays away this long
        self.start()

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def sql(self, statement: str, database: str = "postgres") -> str:
        return subprocess.run(
            [self.psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
             "-tAc", statement],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip

    def migrate_template(self) -> None:
        self.sql(f"CREATE DATABASE {self.TEMPLATE}")
        manage(["migrate", "--noinput"], {"DATABASE_URL": self.url(self.TEMPLATE)})

    def database(self, name: str) -> str:
        """A fresh, migrated database; returns its URL."""
        self.sql(f"DROP DATABASE IF EXISTS {name}")
        self.sql(f"CREATE DATABASE {name} TEMPLATE {self.TEMPLATE}")
        return self.url(name)

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    if not (_pg_bin("initdb") and _pg_bin("pg_ctl")):
        pytest.skip("PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb) not installed")
    if os.geteuid() == 0 and not shutil.which("runuser"):
        pytest.skip("running as root and runuser is missing: initdb refuses to run as root")
    cluster = PrivatePostgres()
    try:
        cluster.migrate_template()
        yield cluster
    finally:
        cluster.destroy()
