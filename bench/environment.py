"""The benchmark's environment: its own PostgreSQL database, a private Redis, real processes.

`Environment` owns every subprocess it starts (workers, web server, SMTP sink) and stops them
all in `close()`, which `python -m bench` calls on success, failure and Ctrl-C alike.
"""

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg

from tests.servers import ProcessGroup, RedisServer, Worker, free_port, port_open, wait_until
from tests.web import WebServer

BENCH_DB = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench")
ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
NULL_EMAIL = "bench.null_email.EmailBackend"
LOCMEM_EMAIL = "django.core.mail.backends.locmem.EmailBackend"


def create_database(url: str = BENCH_DB) -> None:
    """Drop and create the benchmark database, then migrate it (in a subprocess)."""
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "-v", "0"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url, "MESSAGING_EMBEDDED": "false"},
        check=True,
    )


class BenchWebServer(WebServer):
    """`tests.web.WebServer` whose gunicorn worker processes can be measured."""

    def __init__(self, env: dict[str, str], workers: int = 1, threads: int = 4) -> None:
        super().__init__(env, workers=workers, threads=threads)
        wait_until(lambda: len(self.children()) >= workers, 10, 0.1, "gunicorn workers")

    def children(self) -> list[int]:
        return children(self.process.pid)


class SmtpSink(ProcessGroup):
    """`python -m aiosmtpd` with the discarding `Sink` handler, in its own process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        command = [PYTHON, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.port}"]
        super().__init__([*command, "-c", "aiosmtpd.handlers.Sink"], {})
        self.wait_ready(lambda: port_open(self.port), "the SMTP sink")


class Environment:
    """The bench database, a private Redis, Django set up in this process with the same
    settings as the subprocesses; `env` is what every subprocess gets."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        create_database()
        self.redis = RedisServer()
        self.redis.start()
        self._stack.callback(self.redis.stop)
        self.env = {
            "DATABASE_URL": BENCH_DB,
            "REDIS_URL": self.redis.url,
            "MESSAGING_EMBEDDED": "false",
            "LOG_LEVEL": "WARNING",
            "SEND_THROTTLE_RATE": "",
            "API_THROTTLE_RATE": "",
            "DJANGO_SETTINGS_MODULE": "messaging_site.settings",
        }
        os.environ.update(self.env)
        import django

        django.setup()
        self._owner: Any = None
        self._token = ""

    # --- processes ----------------------------------------------------------------------
    def own(self, process: Any) -> Any:
        """Stop `process` (anything with `stop()`) when the environment closes."""
        self._stack.callback(process.stop)
        return process

    @contextmanager
    def workers(
        self, count: int = 1, concurrency: int = 2, **options: object
    ) -> Iterator[list[Worker]]:
        """`count` worker nodes on the email and SMS queues, with `options` in their env."""
        with self.options(**options) as env:
            started: list[Worker] = []
            try:
                for _ in range(count):
                    started.append(self.own(Worker(env, concurrency=concurrency)))
                yield started
            finally:
                for worker in started:
                    worker.stop()

    @contextmanager
    def web(
        self, workers: int = 1, threads: int = 4, **options: object
    ) -> Iterator[BenchWebServer]:
        with self.options(**options) as env:
            server = self.own(BenchWebServer(env, workers=workers, threads=threads))
            try:
                yield server
            finally:
                server.stop()

    @contextmanager
    def options(self, **values: object) -> Iterator[dict[str, str]]:
        """Set service options in this process's `settings.COMMUNICATION` (dispatch reads
        BATCH_SIZE and BATCHES_IN_FLIGHT) and return the env carrying them to subprocesses."""
        from django.conf import settings

        from communication.conf import DEFAULTS

        saved = dict(settings.COMMUNICATION)
        for name, value in values.items():
            if name in DEFAULTS:
                settings.COMMUNICATION[name] = type(DEFAULTS[name])(value)
        try:
            yield {**self.env, **{name: str(value) for name, value in values.items()}}
        finally:
            settings.COMMUNICATION.clear()
            settings.COMMUNICATION.update(saved)

    def close(self) -> None:
        self._stack.close()

    # --- data ---------------------------------------------------------------------------
    def owner(self) -> Any:
        """The user every benchmark job belongs to (created once)."""
        if self._owner is None:
            from django.contrib.auth import get_user_model

            self._owner, _ = get_user_model().objects.get_or_create(username="bench")
        return self._owner

    def token(self) -> str:
        """A DRF token of `owner()`, for the API cases."""
        if not self._token:
            from rest_framework.authtoken.models import Token

            self._token = Token.objects.get_or_create(user=self.owner())[0].key
        return self._token

    def park_jobs(self) -> None:
        """Cancel every active job, so a worker's recovery sweep doesn't resume another case's
        leftovers (accept and memory cases queue jobs that are never meant to be sent)."""
        from communication.models import ACTIVE_JOB_STATUSES, Job, JobStatus

        Job.objects.filter(status__in=ACTIVE_JOB_STATUSES).update(status=JobStatus.CANCELLED)

    def reset_redis(self) -> None:
        """Empty the private Redis (queues, lanes, limiter state) between cases."""
        self.redis.client().flushall()


def email_recipients(count: int, prefix: str = "user") -> list[str]:
    return [f"{prefix}{i}@example.com" for i in range(count)]


def job_wait(job_id: object, timeout: float) -> Any:
    """Poll the job row until it leaves the active statuses; return it."""
    from communication.models import ACTIVE_JOB_STATUSES, Job

    def finished() -> bool:
        return Job.objects.get(id=job_id).status not in ACTIVE_JOB_STATUSES

    wait_until(finished, timeout, 0.2, f"job {job_id} to finish")
    return Job.objects.get(id=job_id)


# --- processes and memory ------------------------------------------------------------------
def status_kb(pid: int, field: str = "VmHWM") -> int:
    """A `/proc/<pid>/status` figure in kB (VmHWM: peak resident set), 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    """The direct children of `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


# --- the machine ---------------------------------------------------------------------------
def machine() -> dict[str, str]:
    """CPU, cores, RAM and the versions of everything measured, for the report."""
    import celery
    import django

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    mem_kb = status_kb_file("/proc/meminfo", "MemTotal")
    return {
        "CPU": cpu,
        "Cores": str(os.cpu_count()),
        "RAM": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "Python": sys.version.split()[0],
        "Django": django.get_version(),
        "Celery": celery.__version__,
        "Redis": _version(["redis-server", "--version"], "v="),
        "PostgreSQL": _postgres_version(),
        "Date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def status_kb_file(path: str, field: str) -> int:
    for line in Path(path).read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _version(command: list[str], marker: str) -> str:
    if not shutil.which(command[0]):
        return "unknown"
    out = subprocess.run(command, capture_output=True, text=True).stdout
    return out.split(marker, 1)[1].split()[0] if marker in out else out.strip()


def _postgres_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0]


def job_queue(env: Environment, recipients: list[str], channel: str = "email") -> Any:
    """Create a job with `job_create` and start its lanes with `job_dispatch`; return it."""
    from communication.services.jobs import job_create, job_dispatch

    job = job_create(
        owner=env.owner(),
        channel=channel,
        recipients=recipients,
        subject="Bench" if channel == "email" else "",
        message="<p>Hello from the benchmark</p>" if channel == "email" else "Hello",
    )
    job_dispatch(job=job)
    return job
