"""Case 2: pipeline throughput, against the naive baseline and the SMTP sink's raw ceiling.

One worker node with two pool processes sends one email job (`job_create` + `job_dispatch` in
this process) with the rate limit out of the way (`EMAIL_RATE_LIMIT=100000/s`,
`EMAIL_BATCH_DELAY=0`, `BATCHES_IN_FLIGHT=4`). Throughput is recipients / (job.finished_at -
job.started_at), i.e. from the first batch's claim to the job's final status, at batch sizes 10
and 100, (a) with the locmem backend and (b) to an aiosmtpd sink in its own process.

(c) The naive baseline (`bench.naive`: one task per recipient, one UPDATE per send) runs on the
same work size and backend, measured from its first send to its last (`sent_at`).
(d) The sink's ceiling: smtplib over one reused connection, sending the same message N times.
"""

import smtplib
import time

from django.core.mail import EmailMultiAlternatives

from tests.servers import Worker

from .environment import (
    LOCMEM_EMAIL,
    Environment,
    SmtpSink,
    email_recipients,
    job_queue,
    job_wait,
    wait_until,
)
from .figures import Figure, median_figure
from .naive import QUEUE, naive_enqueue

BATCH_SIZES = (10, 100)
OPTIONS = {"EMAIL_RATE_LIMIT": "100000/s", "EMAIL_BATCH_DELAY": 0, "BATCHES_IN_FLIGHT": 4}
TARGETS = {10: 2_500, 100: 8_000}
NAIVE_FACTOR = 10
SINK_SHARE = 0.7


def sizes(quick: bool) -> tuple[int, int, int]:
    """Work sizes: locmem pipeline, SMTP sink, naive baseline. The sink (~200-400/s) and the
    naive baseline (~50-100/s here) get fewer recipients so that the full run stays near 15
    minutes; both rates are steady after a few seconds, so a smaller size changes them little."""
    return (10_000, 2_000, 1_000) if quick else (50_000, 5_000, 3_000)


def pipeline_rates(env: Environment, size: int, runs: int, **options: object) -> list[float]:
    """Recipients/s of `runs` jobs of `size` through one worker node (concurrency 2)."""
    rates = []
    with env.workers(1, concurrency=2, **OPTIONS, **options):
        for _ in range(runs):
            job = job_queue(env, email_recipients(size))
            job = job_wait(job.id, timeout=size / 50 + 60)
            if job.completed_count != size:
                raise RuntimeError(f"job {job.id} ended {job.status}: {job.completed_count}/{size}")
            rates.append(size / (job.finished_at - job.started_at).total_seconds())
    return rates


def naive_rates(env: Environment, size: int, runs: int, **options: object) -> list[float]:
    """Recipients/s of the one-task-per-recipient baseline, first send to last."""
    from communication.models import Delivery, DeliveryStatus
    from communication.services.jobs import job_create

    rates = []
    for _ in range(runs):
        job = job_create(
            owner=env.owner(),
            channel="email",
            recipients=email_recipients(size),
            subject="Bench",
            message="<p>Hello from the benchmark</p>",
        )
        env.park_jobs()  # the pipeline's own sweep must leave this job alone
        rows = Delivery.objects.filter(job=job)
        naive_enqueue(list(rows.values_list("id", flat=True)))
        with env.options(**options) as worker_env:
            worker = env.own(
                Worker(worker_env, QUEUE, concurrency=2, extra_args=("-I", "bench.naive"))
            )
            try:
                sent = rows.filter(status=DeliveryStatus.SENT)
                wait_until(lambda s=sent: s.count() >= size, size / 20 + 60, 0.5, "naive sends")
            finally:
                worker.stop()
        times = sorted(t.timestamp() for t in sent.values_list("sent_at", flat=True))
        rates.append((len(times) - 1) / (times[-1] - times[0]))
    return rates


def sink_ceiling(port: int, count: int) -> float:
    """Messages/s that smtplib gets through one reused connection to the sink."""
    message = EmailMultiAlternatives(
        "Bench", "Hello from the benchmark", "noreply@localhost", ["user@example.com"]
    )
    message.attach_alternative("<p>Hello from the benchmark</p>", "text/html")
    data = message.message().as_bytes()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        started = time.perf_counter()
        for i in range(count):
            smtp.sendmail("noreply@localhost", [f"user{i}@example.com"], data)
        return count / (time.perf_counter() - started)


def run(env: Environment, *, quick: bool, runs: int) -> list[Figure]:
    size, smtp_size, naive_size = sizes(quick)
    figures = []
    locmem = {"EMAIL_BACKEND": LOCMEM_EMAIL}
    best = 0.0
    for batch in BATCH_SIZES:
        rates = pipeline_rates(env, size, runs, EMAIL_BATCH_SIZE=batch, **locmem)
        figure = median_figure(
            "pipeline",
            f"locmem, batch {batch} ({size:,})",
            rates,
            "rcpt/s",
            target=f">= {TARGETS[batch]:,}/s",
            check=lambda v, t=TARGETS[batch]: v >= t,
            note="1 node, concurrency 2, BATCHES_IN_FLIGHT=4, EMAIL_BATCH_DELAY=0",
        )
        figures.append(figure)
        best = max(best, figure.value)
    naive = median_figure(
        "pipeline",
        f"naive, locmem ({naive_size:,})",
        naive_rates(env, naive_size, runs, **locmem),
        "rcpt/s",
    )
    figures.append(naive)
    figures.append(
        _ratio("pipeline / naive (locmem, best batch)", best / naive.value, NAIVE_FACTOR)
    )
    sink = env.own(SmtpSink())
    try:
        smtp = {"EMAIL_URL": sink.url}
        ceiling = median_figure(
            "pipeline",
            f"sink ceiling: smtplib, 1 connection ({smtp_size:,})",
            [sink_ceiling(sink.port, smtp_size) for _ in range(runs)],
            "msg/s",
        )
        figures.append(ceiling)
        best_smtp = 0.0
        for batch in BATCH_SIZES:
            figure = median_figure(
                "pipeline",
                f"SMTP sink, batch {batch} ({smtp_size:,})",
                pipeline_rates(env, smtp_size, runs, EMAIL_BATCH_SIZE=batch, **smtp),
                "rcpt/s",
            )
            figures.append(figure)
            best_smtp = max(best_smtp, figure.value)
        naive_smtp = median_figure(
            "pipeline",
            f"naive, SMTP sink ({naive_size:,})",
            naive_rates(env, naive_size, runs, **smtp),
            "rcpt/s",
        )
        figures.append(naive_smtp)
    finally:
        sink.stop()
    figures.append(
        _ratio(
            "pipeline to sink / sink ceiling (best batch)", best_smtp / ceiling.value, SINK_SHARE
        )
    )
    figures.append(_ratio("pipeline / naive (SMTP sink, best batch)", best_smtp / naive_smtp.value))
    return figures


def _ratio(name: str, value: float, target: float | None = None) -> Figure:
    if target is None:
        return Figure("pipeline", name, value, "x")
    shown = f">= {target:g}x" if target >= 1 else f">= {target:.0%}"
    return Figure("pipeline", name, value, "x", target=shown, passed=value >= target)
