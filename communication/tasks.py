"""Celery tasks: thin wrappers that take ids and call services.

`send_batch` is one link of a job's lane: it sends one batch and enqueues the next link with
the lane's new token, after the pause the service asks for (never longer than a minute, so no
task waits in the broker anywhere near its visibility timeout). Each step of a link's journey
names the lane's holder (see `runtime`): the worker that received it, then the process running
it, then `queued` once its successor is in the broker.
"""

import contextlib
import logging
import time
from typing import Any

import redis
from celery import shared_task
from celery.signals import task_received, worker_ready
from kombu.exceptions import OperationalError as BrokerUnavailable

from . import liveness
from .services.batches import job_batch_send
from .services.recovery import sweep as sweep_service
from .stores import get_job_runtime, process_owner

logger = logging.getLogger(__name__)

SEND_BATCH = "communication.send_batch"
# A link that cannot reach the broker (Redis restarting) keeps trying this long, then gives its
# lane up so that the sweep replaces it as soon as Redis answers.
ENQUEUE_RETRY_FOR = 60.0
ENQUEUE_RETRY_INTERVAL = 1.0
RETRY_FAILED_BATCH_AFTER = 2.0


@shared_task(name=SEND_BATCH, acks_late=True, ignore_result=True)
def send_batch(job_id: str, channel: str, lane: int, token: str) -> None:
    runtime = get_job_runtime()
    holder = process_owner()
    successor = runtime.advance(job_id, lane, token, holder)
    if successor is None:
        logger.info("job %s lane %s: stale link, stopping", job_id, lane)
        return
    try:
        wait = job_batch_send(job_id=job_id)
    except Exception:
        # The database is away (a restart), or worse: the lane goes on, trying again shortly,
        # rather than dying in a process that stays alive and so seems to hold it.
        logger.exception("job %s lane %s: the batch failed; trying again shortly", job_id, lane)
        wait = RETRY_FAILED_BATCH_AFTER
    if wait is None:
        _lane_end(job_id, lane, successor)
        return
    # No countdown at all when there is nothing to wait for: an ETA task goes through the
    # worker's timer, which costs latency on every batch.
    options = {"countdown": wait} if wait > 0 else {}
    if not _enqueue((job_id, channel, lane, successor), queue=channel, **options):
        _lane_end(job_id, lane, successor)
        return
    # Without Redis the lane still names this living process: harmless, the successor runs.
    with contextlib.suppress(redis.RedisError):
        runtime.enqueued(job_id, lane, successor, holder)


def _enqueue(args: tuple[Any, ...], **options: Any) -> bool:
    deadline = time.monotonic() + ENQUEUE_RETRY_FOR
    while True:
        try:
            send_batch.apply_async(args, **options)
            return True
        except (BrokerUnavailable, redis.RedisError) as err:
            if time.monotonic() > deadline:
                logger.error("job %s lane %s: broker unavailable, lane given up", *args[::2])
                return False
            logger.warning("job %s: cannot enqueue the next batch yet: %s", args[0], err)
            time.sleep(ENQUEUE_RETRY_INTERVAL)


def _lane_end(job_id: str, lane: int, token: str) -> None:
    try:
        get_job_runtime().end_lane(job_id, lane, token)
    except redis.RedisError:
        liveness.defer(lambda: get_job_runtime().end_lane(job_id, lane, token))


@shared_task(name="communication.sweep", ignore_result=True)
def sweep(channel: str) -> dict[str, int]:
    return sweep_service(channel=channel)


@task_received.connect
def lane_received(request: Any, **kwargs: Any) -> None:
    """The worker that receives a link holds its lane until it runs it (or dies with it)."""
    if request.name != SEND_BATCH:
        return
    job_id, _channel, lane, token = request.args
    # Without Redis the lane keeps its previous holder; the link still runs.
    with contextlib.suppress(redis.RedisError):
        get_job_runtime().receive(job_id, lane, token, process_owner())


@worker_ready.connect
def sweep_on_start(sender: Any, **kwargs: Any) -> None:
    """A worker that starts finishes what others left behind, without waiting for beat: now,
    and once more when the liveness records of processes that died just before have expired."""
    queues = {queue.name for queue in sender.app.amqp.queues.consume_from.values()}
    for channel in ("email", "sms"):
        if channel in queues:
            sweep.apply_async((channel,), queue=channel)
            sweep.apply_async((channel,), queue=channel, countdown=liveness.LIVENESS_TTL + 1)
