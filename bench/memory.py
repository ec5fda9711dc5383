"""Case 3: memory of a worker through a large job, and of Redis while a huge job is queued.

(The web process's peak is measured by the accept case, while it accepts 100,000 recipients.)

- Worker: one node, two pool processes, sends a 200,000-recipient job (`--quick`: 50,000) to
  `bench.null_email` (discards messages; locmem would keep them all), batch size 100, rate limit
  out of the way. Every 0.5 s we read VmHWM (peak RSS) of the node's main process and its pool
  children; the figure is the largest.
- Redis: `INFO memory` used_memory after `job_create` + `job_dispatch` of a 1,000,000-recipient
  job (`--quick`: 200,000) with no worker running, minus used_memory just before.
"""

import time

from .environment import (
    NULL_EMAIL,
    Environment,
    children,
    email_recipients,
    job_queue,
    status_kb,
)
from .figures import Figure
from .pipeline import OPTIONS

WORKER_LIMIT_MB = 150
REDIS_LIMIT_MB = 20


def worker_peak_mb(env: Environment, size: int) -> tuple[float, float]:
    """(largest VmHWM among the node's processes in MB, recipients/s) through one job."""
    from communication.models import ACTIVE_JOB_STATUSES, Job

    options = {**OPTIONS, "EMAIL_BACKEND": NULL_EMAIL, "EMAIL_BATCH_SIZE": 100}
    with env.workers(1, concurrency=2, **options) as (worker,):
        job = job_queue(env, email_recipients(size))
        peak = 0
        deadline = time.monotonic() + size / 50 + 60
        while Job.objects.get(id=job.id).status in ACTIVE_JOB_STATUSES:
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {job.id} did not finish in time")
            pids = [worker.process.pid, *children(worker.process.pid)]
            peak = max([peak, *(status_kb(pid) for pid in pids)])
            time.sleep(0.5)
        job.refresh_from_db()
    rate = size / (job.finished_at - job.started_at).total_seconds()
    return peak / 1024, rate


def redis_queued_mb(env: Environment, size: int) -> tuple[float, float]:
    """(Redis memory in MB taken by a queued job of `size`, seconds job_create took)."""
    client = env.redis.client()
    env.reset_redis()
    before = client.info("memory")["used_memory"]
    started = time.perf_counter()
    job_queue(env, email_recipients(size))
    took = time.perf_counter() - started
    after = client.info("memory")["used_memory"]
    env.park_jobs()
    return (after - before) / 1024 / 1024, took


def run(env: Environment, *, quick: bool, runs: int) -> list[Figure]:
    """One run each: peaks vary little from run to run, and the jobs are the largest here."""
    worker_size = 50_000 if quick else 200_000
    redis_size = 200_000 if quick else 1_000_000
    peak, rate = worker_peak_mb(env, worker_size)
    queued, took = redis_queued_mb(env, redis_size)
    return [
        Figure(
            "memory",
            f"worker peak RSS through {worker_size:,}",
            peak,
            "MB",
            target=f"< {WORKER_LIMIT_MB} MB",
            passed=peak < WORKER_LIMIT_MB,
            note=f"max VmHWM of main + 2 pool processes; sent at {rate:,.0f}/s (null backend)",
        ),
        Figure(
            "memory",
            f"Redis for a queued {redis_size:,}-recipient job",
            queued,
            "MB",
            target=f"< {REDIS_LIMIT_MB} MB",
            passed=queued < REDIS_LIMIT_MB,
            note=f"used_memory delta; job_create + job_dispatch took {took:.1f} s",
        ),
    ]
