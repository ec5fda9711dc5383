"""Which Celery workers are live and which queues each consumes, asked through Celery's control
API (`inspect().active_queues()`).

A broadcast waits its whole timeout for replies (it cannot know how many workers exist), so
callers that answer often (`queue_status`) cache the answer; `manage.py sendbulk` asks once.
"""

import logging
from dataclasses import dataclass

from celery import current_app

from .models import Channel

logger = logging.getLogger(__name__)

INSPECT_TIMEOUT = 0.5


@dataclass(frozen=True, order=True)
class WorkerStatus:
    name: str
    queues: tuple[str, ...]


def workers_inspect() -> list[WorkerStatus]:
    """The workers that answer within `INSPECT_TIMEOUT`; none if the broker cannot be asked."""
    try:
        # A connection of its own: a pooled one may be dead since a Redis restart.
        with current_app.connection_for_write() as connection:
            inspect = current_app.control.inspect(timeout=INSPECT_TIMEOUT, connection=connection)
            replies = inspect.active_queues() or {}
    except Exception:
        logger.exception("could not ask the workers for their queues")
        return []
    return sorted(
        WorkerStatus(name, tuple(sorted(q["name"] for q in queues or [])))
        for name, queues in replies.items()
    )


def workers_by_channel(workers: list[WorkerStatus]) -> dict[str, bool]:
    """`{"email": True, "sms": False}`: whether some live worker consumes each channel's queue."""
    consumed = {queue for worker in workers for queue in worker.queues}
    return {channel: channel in consumed for channel in Channel.values}
