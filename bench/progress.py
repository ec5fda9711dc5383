"""Case 4: latency of the progress endpoint under 20 concurrent pollers during a running job.

gunicorn runs with `-w 2 --threads 8`. One worker node (concurrency 2) sends a 20,000-recipient
email job at 500/s (locmem). 20 threads, each with its own `requests.Session`, poll
`GET /api/communication/email/progress?jobId=` back to back for 15 s (`--quick`: 8 s); each
request is timed client-side (so the figure includes this process's own scheduling).
"""

import statistics
import threading
import time

import requests

from .environment import LOCMEM_EMAIL, Environment, email_recipients, job_queue, wait_until
from .figures import Figure, median_figure

POLLERS = 20
P99_LIMIT_MS = 25.0
JOB_SIZE = 20_000


def poll(url: str, token: str, until: float, latencies: list[float]) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    while time.monotonic() < until:
        started = time.perf_counter()
        response = session.get(url)
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"progress answered {response.status_code}")


def one_run(env: Environment, url: str, seconds: float) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, requests/s) of one polling period during a running job."""
    from communication.models import Job, JobStatus
    from communication.services.jobs import job_cancel

    job = job_queue(env, email_recipients(JOB_SIZE))
    wait_until(
        lambda: Job.objects.get(id=job.id).status == JobStatus.RUNNING, 30, 0.1, "job running"
    )
    latencies: list[float] = []
    until = time.monotonic() + seconds
    pollers = [
        threading.Thread(target=poll, args=(f"{url}{job.id}", env.token(), until, latencies))
        for _ in range(POLLERS)
    ]
    for thread in pollers:
        thread.start()
    for thread in pollers:
        thread.join()
    still_running = Job.objects.get(id=job.id).status == JobStatus.RUNNING
    job_cancel(job=job)
    if not still_running:
        raise RuntimeError("the job finished before polling ended; make it larger")
    cuts = statistics.quantiles(latencies, n=100)
    return cuts[49] * 1000, cuts[98] * 1000, len(latencies) / seconds


def run(env: Environment, *, quick: bool, runs: int) -> list[Figure]:
    seconds = 8.0 if quick else 15.0
    options = {
        "EMAIL_BACKEND": LOCMEM_EMAIL,
        "EMAIL_RATE_LIMIT": "500/s",
        "EMAIL_BATCH_DELAY": 0,
        "BATCHES_IN_FLIGHT": 4,
    }
    results = []
    with env.web(workers=2, threads=8) as web, env.workers(1, concurrency=2, **options):
        url = f"{web.url}/api/communication/email/progress?jobId="
        for _ in range(runs):
            results.append(one_run(env, url, seconds))
    note = f"gunicorn -w 2 --threads 8; {POLLERS} pollers for {seconds:g} s during a 500/s job"
    return [
        median_figure("progress", "progress p50", [r[0] for r in results], "ms", note=note),
        median_figure(
            "progress",
            "progress p99",
            [r[1] for r in results],
            "ms",
            target=f"< {P99_LIMIT_MS:g} ms",
            check=lambda v: v < P99_LIMIT_MS,
        ),
        median_figure("progress", "progress requests served", [r[2] for r in results], "req/s"),
    ]
