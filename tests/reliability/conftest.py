"""Fault injection for the reliability tests: providers that fail on a schedule, a private
PostgreSQL cluster that a test may restart, and the web app as a real server process."""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug import Request, Response

from ..servers import Failures, SmsProvider, SmtpServer, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


# --- Providers that misbehave on a schedule ---------------------------------------------------


class Attempt:
    def __init__(self, recipient: str, at: float, status: int, key: str = "") -> None:
        self.recipient, self.at, self.status, self.key = recipient, at, status, key

    def __repr__(self) -> str:
        return f"Attempt({self.recipient!r}, {self.at:.3f}, {self.status}, {self.key!r})"


class OutageFailures(Failures):
    """Per-recipient rules as `Failures`, plus a window in which everybody gets `status`."""

    def __init__(self) -> None:
        super().__init__()
        self.outage_until = 0.0
        self.outage_status = 503

    def outage(self, seconds: float, status: int = 503) -> None:
        self.outage_status = status
        self.outage_until = time.monotonic() + seconds

    def take(self, recipient: str) -> int | None:
        if time.monotonic() < self.outage_until:
            return self.outage_status
        return super().take(recipient)


class FaultySmsProvider(SmsProvider):
    """The HTTP SMS provider of tests/servers.py that also logs every attempt (time, status and
    `Idempotency-Key`), can answer 5xx to everybody for a while (`failures.outage(20)`) and can
    be slow for its first `slow_count` requests only."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = OutageFailures()
        self.log: list[Attempt] = []
        self.slow_count = 0
        self.slow_seconds = 0.0
        self._requests = 0

    def _handle(self, request: Request) -> Response:
        body = json.loads(request.data)
        to = body.get("to", "")
        key = request.headers.get("Idempotency-Key", "")
        with self.lock:
            self._requests += 1
            slow = self._requests <= self.slow_count
        self.attempts[to] += 1
        if slow:
            time.sleep(self.slow_seconds)
        status = self.failures.take(to)
        with self.lock:
            self.log.append(Attempt(to, time.time(), status or 200, key))
        if status is not None:
            return Response(json.dumps({"error": "failed"}), status=status)
        with self.lock:
            self.received.append(_received(to, body))
            message_id = f"msg-{len(self.received)}"
        return Response(json.dumps({"id": message_id}), status=200, content_type="application/json")

    def attempts_of(self, recipient: str) -> list[Attempt]:
        return [a for a in self.log if a.recipient == recipient]


def _received(to: str, body: dict[str, Any]) -> Any:
    from ..servers import Received

    return Received(to, time.time(), body=body)


class FaultySmtpServer(SmtpServer):
    """The SMTP server of tests/servers.py with an outage scheduled from a background thread."""

    def outage_when(self, start: Callable[[], bool], seconds: float) -> "Outage":
        return Outage(start, seconds, down=self.stop, up=self.start)


class Outage(threading.Thread):
    """Waits for `start()` to be true, calls `down()`, and `up()` again `seconds` later."""

    def __init__(
        self, start: Callable[[], bool], seconds: float, down: Callable[[], None], up: Callable
    ) -> None:
        super().__init__(daemon=True)
        self.when, self.seconds, self.down, self.up = start, seconds, down, up
        self.began = self.ended = 0.0
        self.start()

    def run(self) -> None:
        while not self.when():
            time.sleep(0.02)
        self.down()
        self.began = time.time()
        time.sleep(self.seconds)
        self.up()
        self.ended = time.time()


@pytest.fixture
def sms_provider() -> Iterator[FaultySmsProvider]:
    provider = FaultySmsProvider()
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture
def smtp_server() -> Iterator[FaultySmtpServer]:
    server = FaultySmtpServer()
    server.start()
    yield server
    server.stop()


# --- Reading worker logs ----------------------------------------------------------------------

# Worker log lines: "2026-01-31 12:00:00,123 INFO communication.services.sending send failed
# job=<uuid> delivery=<id>: <error>", in UTC (settings.TIME_ZONE, which Django exports as TZ).
_FAILED_LINE = re.compile(
    r"^\[?(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}).*send failed job=(?P<job>\S+) "
    r"delivery=(?P<delivery>\d+): (?P<error>.*)$",
    re.M,
)


def failed_attempts(log: str, job_id: str) -> dict[int, list[float]]:
    """Times (epoch seconds) of the failed send attempts of each delivery, from worker logs."""
    found: dict[int, list[float]] = {}
    for match in _FAILED_LINE.finditer(log):
        if match["job"] != str(job_id):
            continue
        at = datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
        at_epoch = at.timestamp()
        found.setdefault(int(match["delivery"]), []).append(at_epoch)
    return found


# --- A private PostgreSQL cluster -------------------------------------------------------------


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
        time.sleep(down_for)
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


# --- The web app and management commands as subprocesses -------------------------------------


def manage(args: list[str], env: dict[str, str], timeout: float = 120) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def create_token(env: dict[str, str], username: str) -> str:
    """Create a user (if needed) and return its API token, through `manage.py shell`."""
    code = (
        "from django.contrib.auth import get_user_model;"
        "from rest_framework.authtoken.models import Token;"
        f"u, _ = get_user_model().objects.get_or_create(username={username!r});"
        "print('TOKEN=' + Token.objects.get_or_create(user=u)[0].key)"
    )
    output = manage(["shell", "-c", code], env)
    return re.search(r"TOKEN=(\w+)", output)[1]  # type: ignore[index]


class Client:
    """A user of the HTTP API: `requests` with a token."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    def post(self, path: str, body: Any, timeout: float = 60) -> requests.Response:
        return self.session.post(self.base_url + path, json=body, timeout=timeout)

    def get(self, path: str, params: Any = None, timeout: float = 30) -> requests.Response:
        return self.session.get(self.base_url + path, params=params, timeout=timeout)

    def progress(self, channel: str, job_id: str) -> dict[str, Any]:
        response = self.get(f"/api/communication/{channel}/progress", {"jobId": job_id})
        assert response.status_code == 200, response.text
        return response.json()

    def wait_final(
        self, channel: str, job_id: str, timeout: float, errors: list[str] | None = None
    ) -> dict[str, Any]:
        """Poll progress until the job is final. Polls that fail (connection refused, 5xx while
        the database restarts) are listed in `errors` instead of stopping the wait."""
        last: dict[str, Any] = {}

        def final() -> bool:
            nonlocal last
            try:
                response = self.get(f"/api/communication/{channel}/progress", {"jobId": job_id})
            except requests.RequestException as err:
                if errors is not None:
                    errors.append(type(err).__name__)
                return False
            if response.status_code != 200:
                if errors is not None:
                    errors.append(f"HTTP {response.status_code}")
                return False
            last = response.json()
            return last.get("status") not in ("queued", "running")

        wait_until(final, timeout, 0.5, f"job {job_id} to finish (last: {last})")
        return last
