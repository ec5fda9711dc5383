"""Reads for the queue page and `GET /api/queue/workers/init`: live workers and queue depths.

Workers are found with `communication.workers.workers_inspect` (Celery's control API). A
broadcast waits its whole timeout for replies, so the answer is kept in Redis:
fresh for `FRESH_SECONDS`, then served stale for up to `STALE_SECONDS` while one background thread
asks the workers again. Only a cold cache makes a request wait for the broadcast.

Queue depth is what kombu's Redis transport holds for a queue: one list per priority step (`email`,
`email\\x06\\x163`, ...). It counts broker messages (batch tasks of jobs' lanes) that no worker has
taken yet, not recipients: tasks a worker holds for a countdown are not in the list.
"""

import json
import logging
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Count

from communication.conf import get_setting
from communication.models import ACTIVE_JOB_STATUSES, Channel, Job
from communication.stores import get_redis
from communication.workers import WorkerStatus, workers_inspect

logger = logging.getLogger(__name__)

CHANNELS: tuple[str, ...] = tuple(Channel.values)
FRESH_SECONDS = 5
STALE_SECONDS = 60
CACHE_KEY = "queue_status:workers"
FRESH_KEY = "queue_status:workers:fresh"
# kombu.transport.redis: a queue with priorities is one list per step, named queue + sep + step.
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)


def worker_status_list(*, refresh: bool = False) -> list[WorkerStatus]:
    """The live Celery workers and the queues each consumes, cached in Redis.

    Raises `redis.RedisError` when Redis cannot be reached. Embedded mode has no workers.
    """
    if get_setting("EMBEDDED"):
        return []
    client = get_redis()
    cached = None if refresh else client.get(CACHE_KEY)
    if cached is None:
        return _workers_refresh()
    if client.set(FRESH_KEY, 1, nx=True, ex=FRESH_SECONDS):
        threading.Thread(target=_workers_refresh, name="queue-status", daemon=True).start()
    return [WorkerStatus(name, tuple(queues)) for name, queues in json.loads(cached)]


def _workers_refresh() -> list[WorkerStatus]:
    workers = workers_inspect()
    pipe = get_redis().pipeline()
    pipe.set(CACHE_KEY, json.dumps([[w.name, w.queues] for w in workers]), ex=STALE_SECONDS)
    pipe.set(FRESH_KEY, 1, ex=FRESH_SECONDS)
    pipe.execute()
    return workers


def queue_depths() -> dict[str, int]:
    """Messages waiting in each channel's queue (every priority step), in one round trip.

    Reads the Redis of `REDIS_URL`, which is also the Celery broker. Raises `redis.RedisError`.
    """
    pipe = get_redis().pipeline(transaction=False)
    for channel in CHANNELS:
        for step in PRIORITY_STEPS:
            pipe.llen(f"{channel}{PRIORITY_SEPARATOR}{step}" if step else channel)
    lengths = iter(pipe.execute())
    return {channel: sum(next(lengths) for _ in PRIORITY_STEPS) for channel in CHANNELS}


@dataclass(frozen=True)
class QueueStatus:
    name: str
    pending: int
    workers: int
    active_jobs: int

    @property
    def live(self) -> bool:
        return self.workers > 0


def queue_status_list(*, workers: list[WorkerStatus]) -> list[QueueStatus]:
    """Each channel's queue: pending messages, live workers and active jobs (the queue page)."""
    depths = queue_depths()
    active = Job.objects.filter(status__in=ACTIVE_JOB_STATUSES).values_list("channel")
    active_jobs = dict(active.annotate(n=Count("id")).order_by())
    return [
        QueueStatus(
            name=channel,
            pending=depths[channel],
            workers=sum(channel in worker.queues for worker in workers),
            active_jobs=active_jobs.get(channel, 0),
        )
        for channel in CHANNELS
    ]


def broker_description() -> str:
    """Where the queues live, for the queue page (without the password of the URL)."""
    if get_setting("EMBEDDED"):
        return "in-process (embedded mode)"
    url = urlsplit(settings.REDIS_URL)
    host = url.hostname or "localhost"
    return f"{url.scheme}://{host}:{url.port or 6379}{url.path}"
