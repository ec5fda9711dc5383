"""The recovery sweep: finish what crashed workers and lost Redis state left behind.

The database is the source of truth. The sweep (Celery beat, every `SWEEP_INTERVAL` seconds,
one per channel) does two things:

1. Deliveries still `sending` after their lease expired belonged to a worker that died. Those the
   worker had handed to the provider become `unknown` (the provider may have accepted them; a
   blind re-send could duplicate). Those it had not reached become unsent again, with the attempt
   given back. If the hand-over record is gone too (Redis lost its data), they become `unknown`.
2. Active jobs with no live lane (their batch chain was lost with a worker or with Redis) are
   dispatched again, or finished if nothing is left.
"""

import logging
from collections import defaultdict
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..models import ACTIVE_JOB_STATUSES, OPEN_DELIVERY_STATUSES, Delivery, DeliveryStatus, Job
from ..progress import status_changes
from ..stores import get_job_runtime, get_progress_store
from .finishing import job_finish
from .jobs import job_dispatch

logger = logging.getLogger(__name__)

UNKNOWN_REASON = "the worker stopped after handing the message to the provider; outcome unknown"
# A job younger than this is still being dispatched by whoever created it.
RESUME_GRACE = timedelta(seconds=5)


def deliveries_recover_expired(*, channel: str) -> int:
    """Resolve deliveries whose claim outlived its lease; return how many were resolved."""
    now = timezone.now()
    expired = Delivery.objects.filter(
        job__channel=channel, status=DeliveryStatus.SENDING, lease_expires_at__lt=now
    ).values_list("id", "job_id", "claim_token", "attempts")
    claims: dict[object, list[tuple[int, object, int]]] = defaultdict(list)
    for pk, job_id, token, attempts in expired:
        claims[token].append((pk, job_id, attempts))
    runtime = get_job_runtime()
    resolved = 0
    for token, rows in claims.items():
        handed = runtime.handed(token)
        for pk, job_id, attempts in rows:
            if handed is None or pk in handed:
                status, changes = DeliveryStatus.UNKNOWN, {"last_error": UNKNOWN_REASON}
            else:
                status = DeliveryStatus.PENDING if attempts <= 1 else DeliveryStatus.RETRY
                changes = {"attempts": F("attempts") - 1, "next_attempt_at": now}
            with transaction.atomic():
                updated = Delivery.objects.filter(
                    id=pk, claim_token=token, status=DeliveryStatus.SENDING
                ).update(
                    status=status,
                    claim_token=None,
                    lease_expires_at=None,
                    updated_at=now,
                    **changes,
                )
            if updated:
                resolved += 1
                get_progress_store().move(
                    job_id, status_changes([(DeliveryStatus.SENDING, status)])
                )
        runtime.close_claim(token)
    if resolved:
        logger.warning("recovered %d %s deliveries from expired claims", resolved, channel)
    return resolved


def jobs_resume(*, channel: str) -> int:
    """Dispatch again (or finish) active jobs that have no live lane; return how many."""
    jobs = list(
        Job.objects.filter(
            channel=channel,
            status__in=ACTIVE_JOB_STATUSES,
            created_at__lt=timezone.now() - RESUME_GRACE,
        )
    )
    alive = get_job_runtime().jobs_with_lanes([job.id for job in jobs])
    resumed = 0
    for job in jobs:
        if job.id in alive or job_finish(job=job):
            continue
        if Delivery.objects.filter(job=job, status__in=OPEN_DELIVERY_STATUSES).exists():
            logger.warning("job %s has no live batch chain; dispatching it again", job.id)
            job_dispatch(job=job)
            resumed += 1
    return resumed


def sweep(*, channel: str) -> dict[str, int]:
    """One recovery pass over a channel's jobs."""
    return {
        "recovered": deliveries_recover_expired(channel=channel),
        "resumed": jobs_resume(channel=channel),
    }
