"""Case 1: accept latency, and the web process's peak memory while accepting.

A real gunicorn server (`-w 1 --threads 4`, throttling off) receives `POST
/api/communication/email/send` with 1,000, 10,000 and 100,000 recipients and `isBulk: true`; the
time measured is from sending the (pre-encoded) request to receiving the 202. No worker runs, so
the jobs only queue. The web worker's peak RSS is the VmHWM of gunicorn's worker process after
the runs (its largest request being the 100,000-recipient one).
"""

import json
import time

import requests

from .environment import Environment, email_recipients, status_kb
from .figures import Figure, median_figure

SIZES = (1_000, 10_000, 100_000)
WEB_LIMIT_MB = 300
ACCEPT_LIMIT_S = 2.0


def _body(count: int) -> bytes:
    return json.dumps(
        {
            "recipients": email_recipients(count),
            "subject": "Bench",
            "message": "<p>Hello from the benchmark</p>",
            "isBulk": True,
        }
    ).encode()


def _post(session: requests.Session, url: str, body: bytes) -> float:
    started = time.perf_counter()
    response = session.post(url, data=body, headers={"Content-Type": "application/json"})
    elapsed = time.perf_counter() - started
    if response.status_code != 202:
        raise RuntimeError(f"send answered {response.status_code}: {response.text[:500]}")
    return elapsed


def run(env: Environment, *, quick: bool, runs: int) -> list[Figure]:
    """Median accept time per size over `runs` runs, and the web worker's peak RSS."""
    bodies = {count: _body(count) for count in SIZES}
    timings: dict[int, list[float]] = {count: [] for count in SIZES}
    with env.web(workers=1, threads=4) as web:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {env.token()}"
        url = f"{web.url}/api/communication/email/send"
        _post(session, url, _body(20))  # warm-up: imports, connections
        (worker,) = web.children()
        before_kb = status_kb(worker, "VmRSS")
        for _ in range(runs):
            for count in SIZES:
                timings[count].append(_post(session, url, bodies[count]))
        peak_mb = status_kb(worker) / 1024
    env.park_jobs()
    figures = [
        median_figure(
            "accept",
            f"{count:,} recipients accepted",
            timings[count],
            "s",
            target=f"< {ACCEPT_LIMIT_S:g} s" if count == max(SIZES) else "",
            check=(lambda v: v < ACCEPT_LIMIT_S) if count == max(SIZES) else None,
        )
        for count in SIZES
    ]
    figures.append(
        Figure(
            "accept",
            "web process peak RSS (100,000 accepted)",
            peak_mb,
            "MB",
            target=f"< {WEB_LIMIT_MB} MB",
            passed=peak_mb < WEB_LIMIT_MB,
            note=f"gunicorn worker VmHWM; {before_kb / 1024:.0f} MB after warm-up",
        )
    )
    return figures
