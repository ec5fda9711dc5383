"""The Celery worker's consumer, made to survive a broker that restarts.

Set as `CELERY_WORKER_CONSUMER` (messaging_site does): a worker using Celery's own consumer
with a Redis broker dies when Redis restarts (celery/kombu 5.7: closing the lost connection
restores unacknowledged messages through a transport that is already closed, and the
AttributeError is not among the errors Celery ignores there). Those messages cannot be restored
while Redis is away anyway; Redis hands them out again after the visibility timeout, by which
time their lane tokens are stale.

On every lost connection the worker also takes a new owner id: the links it had received but not
started are dropped with the connection, so the lanes that name the old id must look dead to
the recovery sweep (see `runtime`).
"""

import logging
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer
from kombu.common import ignore_errors

from . import liveness
from .stores import get_redis

logger = logging.getLogger(__name__)


class Consumer(CeleryConsumer):
    def on_connection_error_after_connected(self, exc: Any) -> None:
        liveness.rotate_owner(get_redis)
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                ignore_errors(connection, connection.close)
            except AttributeError:
                logger.warning("broker connection lost with unacknowledged messages in hand")
        super().on_connection_error_after_connected(exc)
