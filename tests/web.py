"""The web app as a real gunicorn process, a user of its API over HTTP, and management commands
run as subprocesses."""

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from .servers import ROOT, ProcessGroup, free_port


def manage(args: list[str], env: dict[str, str], timeout: float = 120) -> str:
    """Run `manage.py` with `env` added to this process's environment; its output."""
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


class HttpApiClient:
    """A user of the HTTP API: `requests` with a token."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    def post(self, path: str, body: Any, timeout: float = 60) -> requests.Response:
        return self.session.post(self.base_url + path, json=body, timeout=timeout)

    def get(self, path: str, params: Any = None, timeout: float = 30) -> requests.Response:
        return self.session.get(self.base_url + path, params=params, timeout=timeout)


class WebServer(ProcessGroup):
    """The web app under gunicorn on a free port."""

    def __init__(self, env: dict[str, str], workers: int = 2, threads: int = 4) -> None:
        self.port = free_port()
        self.env = env
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        command = [gunicorn, "messaging_site.wsgi", "-b", f"127.0.0.1:{self.port}"]
        command += ["-w", str(workers), "--threads", str(threads), "--timeout", "300"]
        super().__init__(command, env)
        self.wait_ready(self._answers, "the web server to answer")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, username: str) -> HttpApiClient:
        """A client of the user `username` (created if needed, in this server's database)."""
        code = (
            "from django.contrib.auth import get_user_model;"
            "from rest_framework.authtoken.models import Token;"
            f"u, _ = get_user_model().objects.get_or_create(username={username!r});"
            "print('TOKEN=' + Token.objects.get_or_create(user=u)[0].key)"
        )
        output = manage(["shell", "-c", code], self.env)
        return HttpApiClient(self.url, re.search(r"TOKEN=(\w+)", output)[1])  # type: ignore[index]

    def _answers(self) -> bool:
        try:
            return requests.get(self.url + "/api/communication/jobs/", timeout=1).status_code < 500
        except requests.RequestException:
            return False
