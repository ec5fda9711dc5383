"""Prometheus metrics kept in Redis, so every web process, worker and machine adds to one total.

Why Redis and not prometheus-client's multiprocess mode: Celery prefork children, several worker
machines and several gunicorn processes all send, and a multiprocess directory is per machine.
The `record_*` functions below add to one Redis hash with a single pipelined round trip, and
`MetricsCollector` turns that hash into Prometheus families when `/metrics` is scraped (other
apps add theirs with `collector_register`: queue_status reads the queue depths then). Scrape
any one web process: each sees the whole deployment.

The `record_*` functions never raise: a metrics failure must not break sending.
"""

import hmac
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .stores import get_redis

logger = logging.getLogger(__name__)

KEY = "metrics:v1"
SEP = "|"
OUTCOMES = {"sent": "sent", "failed": "failed", "retry": "retried", "unknown": "unknown"}
RATE_LIMIT_WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
JOB_DURATION_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)


def _field(*parts: object) -> str:
    return SEP.join(str(part).replace(SEP, "_") for part in parts)


def _bucket(value: float, buckets: tuple[float, ...]) -> str:
    for bound in buckets:
        if value <= bound:
            return repr(bound)
    return "+Inf"


def _observe(pipe: Any, name: str, labels: tuple[str, ...], value: float, buckets: tuple) -> None:
    value = max(float(value), 0.0)
    pipe.hincrby(KEY, _field("h", name, *labels, "bucket", _bucket(value, buckets)), 1)
    pipe.hincrbyfloat(KEY, _field("h", name, *labels, "sum"), value)


def record_outcomes(channel: str, provider: str, outcomes: Iterable[tuple[str, int]]) -> None:
    """Count send outcomes of one batch: `outcomes` are `(status, count)` pairs.

    `status` is one of sent, failed, retry, unknown; others are counted under their own name.
    """
    try:
        pipe = get_redis().pipeline(transaction=False)
        queued = 0
        for status, count in outcomes:
            if count:
                pipe.hincrby(KEY, _field("c", status, channel, provider), int(count))
                queued += 1
        if queued:
            pipe.execute()
    except Exception:
        logger.warning("metrics: could not record outcomes", exc_info=True)


def record_rate_limit_wait(channel: str, seconds: float) -> None:
    """Count one wait for a rate-limit slot of `seconds` (a histogram per channel)."""
    try:
        pipe = get_redis().pipeline(transaction=False)
        _observe(pipe, "rate_limit_wait", (channel,), seconds, RATE_LIMIT_WAIT_BUCKETS)
        pipe.execute()
    except Exception:
        logger.warning("metrics: could not record a rate-limit wait", exc_info=True)


def record_job_finished(channel: str, status: str, duration_seconds: float) -> None:
    """Count a job reaching its final `status` after `duration_seconds` (created → finished)."""
    try:
        pipe = get_redis().pipeline(transaction=False)
        _observe(pipe, "job_duration", (channel, status), duration_seconds, JOB_DURATION_BUCKETS)
        pipe.execute()
    except Exception:
        logger.warning("metrics: could not record a finished job", exc_info=True)


def _histogram(
    name: str,
    documentation: str,
    label_names: list[str],
    buckets: tuple[float, ...],
    rows: dict[tuple[str, ...], dict[str, float]],
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=label_names)
    for labels, row in sorted(rows.items()):
        cumulative, points = 0.0, []
        for bound in (*buckets, math.inf):
            key = "+Inf" if bound == math.inf else repr(bound)
            cumulative += row.get(key, 0.0)
            points.append(("+Inf" if bound == math.inf else str(bound), cumulative))
        family.add_metric(list(labels), points, row.get("sum", 0.0))
    return family


class MetricsCollector:
    """Reads the metrics hash from Redis at scrape time."""

    def collect(self) -> Iterator[Metric]:
        yield from self._from_hash(get_redis().hgetall(KEY))

    def _from_hash(self, raw: dict[bytes, bytes]) -> Iterator[Metric]:
        counters = {
            name: CounterMetricFamily(
                f"messaging_{name}",
                f"Recipients whose send attempt ended {name}.",
                labels=["channel", "provider"],
            )
            for name in OUTCOMES.values()
        }
        waits: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
        durations: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
        for key, value in raw.items():
            parts = key.decode().split(SEP)
            if parts[0] == "c" and len(parts) == 4 and parts[1] in OUTCOMES:
                counters[OUTCOMES[parts[1]]].add_metric(parts[2:], float(value))
            elif parts[0] == "h" and parts[1] == "rate_limit_wait" and len(parts) >= 4:
                waits[tuple(parts[2:3])][parts[-1]] = float(value)
            elif parts[0] == "h" and parts[1] == "job_duration" and len(parts) >= 5:
                durations[tuple(parts[2:4])][parts[-1]] = float(value)
        yield from counters.values()
        yield _histogram(
            "messaging_rate_limit_wait_seconds",
            "Time spent waiting for a global rate-limit slot.",
            ["channel"],
            RATE_LIMIT_WAIT_BUCKETS,
            waits,
        )
        yield _histogram(
            "messaging_job_duration_seconds",
            "Time from a job's creation to its final status.",
            ["channel", "status"],
            JOB_DURATION_BUCKETS,
            durations,
        )


def _allowed(request: HttpRequest) -> bool:
    """Open unless `METRICS_TOKEN` is set; then a `Bearer <token>` header or a staff session."""
    token = getattr(settings, "METRICS_TOKEN", "")
    if not token:
        return True
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip(), token):
        return True
    return bool(getattr(request.user, "is_staff", False))


_other_collectors: list[Collector] = []


def collector_register(collector: Collector) -> None:
    """Serve another app's metrics at `/metrics` too (queue_status adds the queue depths)."""
    _other_collectors.append(collector)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics` in the Prometheus text format (Redis unreachable → 503)."""
    if not _allowed(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    for collector in (MetricsCollector(), *_other_collectors):
        registry.register(collector)
    try:
        body = generate_latest(registry)
    except Exception as err:  # Redis down: say so, as a scrape failure, not a 500 page.
        logger.warning("metrics: scrape failed: %s", err)
        return HttpResponse(
            f"# metrics unavailable: {err}\n", status=503, content_type="text/plain"
        )
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
