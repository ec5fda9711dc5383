"""Celery tasks: thin wrappers that take ids and call services.

`send_batch` is one link of a job's lane: it sends one batch and enqueues the next link with
the lane's new token, after the pause the service asks for (never longer than a minute, so no
task waits in the broker anywhere near its visibility timeout).
"""

import logging

from celery import shared_task
from celery.signals import worker_ready

from .services.recovery import sweep as sweep_service
from .services.sending import job_batch_send
from .stores import get_job_runtime

logger = logging.getLogger(__name__)


@shared_task(name="communication.send_batch", acks_late=True, ignore_result=True)
def send_batch(job_id: str, channel: str, lane: int, token: str) -> None:
    runtime = get_job_runtime()
    successor = runtime.advance(job_id, lane, token)
    if successor is None:
        logger.info("job %s lane %s: stale link, stopping", job_id, lane)
        return
    wait = job_batch_send(job_id=job_id)
    if wait is None:
        runtime.end_lane(job_id, lane, successor)
        return
    # No countdown at all when there is nothing to wait for: an ETA task goes through the
    # worker's timer, which costs latency on every batch.
    options = {"countdown": wait} if wait > 0 else {}
    send_batch.apply_async((job_id, channel, lane, successor), queue=channel, **options)


@shared_task(name="communication.sweep", ignore_result=True)
def sweep(channel: str) -> dict[str, int]:
    return sweep_service(channel=channel)


@worker_ready.connect
def sweep_on_start(sender: object, **kwargs: object) -> None:
    """A worker that starts finishes what others left behind, without waiting for beat."""
    queues = {queue.name for queue in sender.app.amqp.queues.consume_from.values()}  # type: ignore[attr-defined]
    for channel in ("email", "sms"):
        if channel in queues:
            sweep.apply_async((channel,), queue=channel)
