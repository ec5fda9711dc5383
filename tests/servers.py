"""Real local servers for tests: a private Redis, an SMTP sink and an HTTP SMS provider.

Each records what it received with the time it arrived, and can be told to fail.
"""

import email
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import redis
from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    """Something listens on 127.0.0.1:`port`."""
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def wait_until(predicate: Any, timeout: float, interval: float = 0.05, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


class RedisServer:
    """A private `redis-server` on a free port, which a test may restart or flush."""

    def __init__(self) -> None:
        if not shutil.which("redis-server"):
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="test-redis-")
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
                "--maxmemory-policy",
                "noeviction",
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        wait_until(lambda: _pings(client), 10, what="redis-server")
        # A snapshot saved by `stop(keep_data=True)` is loaded once, never by a later start.
        (Path(self.dir) / "dump.rdb").unlink(missing_ok=True)

    def stop(self, keep_data: bool = False) -> None:
        """Killed, losing everything, or shut down saving its data for the next start."""
        if self.process is not None:
            if keep_data:
                self.client().shutdown(save=True)
            else:
                self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def restart(self, down_for: float = 0.0, keep_data: bool = False) -> None:
        self.stop(keep_data=keep_data)
        time.sleep(down_for)  # the outage being tested: Redis stays away this long
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@dataclass
class Received:
    recipient: str
    at: float  # time.time() of arrival
    message: Message | None = None
    body: dict[str, Any] = field(default_factory=dict)


class Failures:
    """Failure rules by recipient: `(status, times)`; times=None fails for ever. An outage
    (`outage(seconds)`) fails everybody for a while, before any rule is looked at."""

    def __init__(self) -> None:
        self._rules: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self._outage: tuple[float, int] = (0.0, 503)  # (until, by time.monotonic(); status)

    def add(self, recipient: str, status: int, times: int | None = None) -> None:
        self._rules[recipient] = [status, times]

    def outage(self, seconds: float, status: int = 503) -> None:
        self._outage = (time.monotonic() + seconds, status)

    def clear(self) -> None:
        """Every rule and any outage gone: the provider accepts everybody again."""
        with self._lock:
            self._rules.clear()
            self._outage = (0.0, 503)

    def take(self, recipient: str) -> int | None:
        with self._lock:
            until, status = self._outage
            if time.monotonic() < until:
                return status
            rule = self._rules.get(recipient)
            if rule is None:
                return None
            status, times = rule
            if times is not None:
                if times <= 0:
                    return None
                rule[1] = times - 1
            return status


class Recorder:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.attempts: Counter[str] = Counter()
        self.failures = Failures()
        self.lock = threading.Lock()

    def recipients(self) -> list[str]:
        return [r.recipient for r in self.received]

    def counts(self) -> Counter[str]:
        return Counter(self.recipients())

    def duplicates(self) -> dict[str, int]:
        return {who: n for who, n in self.counts().items() if n > 1}

    def times(self) -> list[float]:
        return sorted(r.at for r in self.received)


class _SmtpHandler:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.recorder.attempts[address] += 1
        status = self.recorder.failures.take(address)
        if status is not None:
            return f"{status} {'Try again later' if status < 500 else 'No such user'}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content)
        with self.recorder.lock:
            for rcpt in envelope.rcpt_tos:
                self.recorder.received.append(Received(rcpt, time.time(), message))
        return "250 Message accepted"


class SmtpServer(Recorder):
    """aiosmtpd on a free port; `stop()`/`start()` simulate an outage."""

    def __init__(self) -> None:
        super().__init__()
        self.port = free_port()
        self.controller: Controller | None = None

    def start(self) -> None:
        # A new controller each time: a stopped one cannot start again (its loop is closed).
        self.controller = Controller(_SmtpHandler(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def messages(self) -> list[Message]:
        return [r.message for r in self.received if r.message is not None]

    def by_recipient(self) -> dict[str, Message]:
        return {r.recipient: r.message for r in self.received if r.message is not None}


@dataclass
class Attempt:
    """A request the SMS provider answered: when, with what status and `Idempotency-Key`."""

    recipient: str
    at: float  # time.time() of the answer
    status: int
    key: str = ""


class SmsProvider(Recorder):
    """pytest-httpserver standing in for an HTTP SMS provider (`POST /sms`).

    Every answered request is in `log`; `delay` makes answers slow (only the first
    `delayed_requests` of them, when that is set); `in_flight` counts requests being handled."""

    def __init__(self) -> None:
        super().__init__()
        self.server = HTTPServer(host="127.0.0.1", port=free_port(), threaded=True)
        self.server.expect_request("/sms", method="POST").respond_with_handler(self._handle)
        self.delay = 0.0
        self.delayed_requests: int | None = None
        self.retry_after: str | None = None
        self.log: list[Attempt] = []
        self.in_flight = 0
        self._requests = 0

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        if self.server.is_running():
            self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url_for("/sms")

    def attempts_of(self, recipient: str) -> list[Attempt]:
        return [a for a in self.log if a.recipient == recipient]

    def _handle(self, request: Request) -> Response:
        with self.lock:
            self.in_flight += 1
            self._requests += 1
            delayed = self.delayed_requests is None or self._requests <= self.delayed_requests
        try:
            return self._answer(request, delayed)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _answer(self, request: Request, delayed: bool) -> Response:
        body = json.loads(request.data)
        to = body.get("to", "")
        self.attempts[to] += 1
        if self.delay and delayed:
            time.sleep(self.delay)  # the slow provider being simulated
        status = self.failures.take(to)
        key = request.headers.get("Idempotency-Key", "")
        with self.lock:
            self.log.append(Attempt(to, time.time(), status or 200, key))
        if status is not None:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return Response(json.dumps({"error": "failed"}), status=status, headers=headers)
        with self.lock:
            self.received.append(Received(to, time.time(), body=body))
            message_id = f"msg-{len(self.received)}"
        return Response(json.dumps({"id": message_id}), status=200, content_type="application/json")


class Outage(threading.Thread):
    """Once `start()` is true, calls `down()`, and `up()` again `seconds` later."""

    def __init__(
        self,
        start: Callable[[], bool],
        seconds: float,
        down: Callable[[], None],
        up: Callable[[], None],
    ) -> None:
        super().__init__(daemon=True)
        self.when, self.seconds, self.down, self.up = start, seconds, down, up
        self.began = 0.0
        self.start()

    def run(self) -> None:
        wait_until(self.when, 120, 0.02, "the outage's moment")
        self.down()
        self.began = time.time()
        time.sleep(self.seconds)  # the outage itself: its length is what is being tested
        self.up()


class SinkProcess:
    """`tests.sink_server` in its own process: arrivals as (time, recipient)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.log = Path(tempfile.mkstemp(prefix="sink-", suffix=".log")[1])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.sink_server", str(self.port), str(self.log)]
        )
        wait_until(lambda: port_open(self.port), 10, what="the sink server")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sms"

    def arrivals(self) -> list[tuple[float, str]]:
        lines = self.log.read_text().split()
        return sorted((float(t), who) for t, who in zip(lines[::2], lines[1::2], strict=True))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most events in any half-open window [t, t + window)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def database_url(settings_dict: dict[str, Any]) -> str:
    """A DATABASE_URL for a subprocess, pointing at the test database in use."""
    engine = settings_dict["ENGINE"]
    name = settings_dict["NAME"]
    if "sqlite" in engine:
        return f"sqlite:///{Path(name).resolve()}"
    user = settings_dict.get("USER") or ""
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else f"{user}@" if user else ""
    host = settings_dict.get("HOST") or "localhost"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{name}"


class ProcessGroup:
    """A subprocess in its own process group, logging to a file: `kill()` (SIGKILL) takes all
    of it, as a machine dying would; `stop()` asks it to finish first."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path | None = None) -> None:
        self.log = log or Path(tempfile.mkstemp(prefix="process-", suffix=".log")[1])
        self._log_file = open(self.log, "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, ready: Any, what: str, timeout: float = 30) -> None:
        """Wait until `ready()`; fail at once, with the log's end, if the process exits."""
        wait_until(lambda: self.process.poll() is not None or ready(), timeout, 0.1, what)
        if self.process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited:\n{self.output()[-3000:]}")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log_file.close()

    def output(self) -> str:
        return self.log.read_text()


class Worker(ProcessGroup):
    """A real `celery worker` process (with `beat=True`, beat runs inside it too)."""

    def __init__(
        self,
        env: dict[str, str],
        queues: str = "email,sms",
        concurrency: int = 1,
        beat: bool = False,
        log: Path | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        log = log or Path(tempfile.mkstemp(prefix="worker-", suffix=".log")[1])
        command = [
            *(sys.executable, "-m", "celery", "-A", "messaging_site", "worker", "-Q", queues),
            *("-c", str(concurrency), "-n", f"w{free_port()}@%h", "-l", "info"),
            *("--without-gossip", "--without-mingle", *extra_args),
        ]
        if beat:
            command += ["-B", "-s", str(log) + ".beat"]
        super().__init__(command, env, log)
        self.wait_ready(lambda: "ready." in self.output(), "the worker to start")
