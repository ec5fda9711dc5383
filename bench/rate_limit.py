"""Case 5: rate-limit accuracy with 1, 2 and 4 worker nodes (concurrency 1 each).

Each node count sends a 150-recipient SMS job (`job_create` + `job_dispatch`) through the webhook
backend to `tests.sink_server` in its own process (which logs each arrival's time), with
`SMS_RATE_LIMIT=10/s`, `SMS_BATCH_DELAY=0` and `BATCHES_IN_FLIGHT=4`. Achieved rate is
(arrivals - 1) / (last - first); the largest window is the most arrivals in any half-open
one-second window. Runnable on its own: `python -m bench.rate_limit [--quick]`.
"""

import sys

from tests.servers import SinkProcess, max_in_window

from .environment import Environment, job_queue, job_wait
from .figures import Figure, median_figure

NODES = (1, 2, 4)
LIMIT = 10
RECIPIENTS = 150


def one_run(env: Environment, nodes: int) -> tuple[float, int]:
    """(achieved rate, largest one-second window) of one job through `nodes` nodes."""
    sink = env.own(SinkProcess())
    try:
        options = {
            "SMS_BACKEND": "webhook",
            "SMS_WEBHOOK_URL": sink.url,
            "SMS_RATE_LIMIT": f"{LIMIT}/s",
            "SMS_BATCH_DELAY": 0,
            "BATCHES_IN_FLIGHT": 4,
        }
        with env.workers(nodes, concurrency=1, **options):
            recipients = [f"+2332410{i:05d}" for i in range(RECIPIENTS)]
            job = job_queue(env, recipients, channel="sms")
            job = job_wait(job.id, timeout=RECIPIENTS / LIMIT * 3 + 30)
        times = [at for at, _ in sink.arrivals()]
    finally:
        sink.stop()
    if job.completed_count != RECIPIENTS or len(times) != RECIPIENTS:
        raise RuntimeError(f"job {job.status}: {job.completed_count} sent, {len(times)} arrived")
    env.redis.client().delete(*env.redis.client().keys("ratelimit:*") or ["-"])
    return (len(times) - 1) / (times[-1] - times[0]), max_in_window(times)


def run(env: Environment, *, quick: bool, runs: int) -> list[Figure]:
    figures = []
    for nodes in NODES:
        results = [one_run(env, nodes) for _ in range(runs)]
        figures.append(
            median_figure(
                "rate_limit",
                f"{nodes} node(s): achieved rate",
                [rate for rate, _ in results],
                "/s",
                target=f">= {0.9 * LIMIT:g}/s",
                check=lambda v: v >= 0.9 * LIMIT,
            )
        )
        worst = max(window for _, window in results)
        figures.append(
            Figure(
                "rate_limit",
                f"{nodes} node(s): largest 1-s window",
                worst,
                "sends",
                target=f"<= {LIMIT}",
                passed=worst <= LIMIT,
                runs=[float(window) for _, window in results],
                note="worst of the runs",
            )
        )
    return figures


if __name__ == "__main__":
    from .__main__ import main

    sys.exit(main(["--only", "rate_limit", "--no-report", *sys.argv[1:]]))
