"""One lane step of a queued job: pass the job's batch gate, claim a batch, send it, record it.

`job_batch_send` is what a lane's batch task (and the embedded mode's thread) calls; it returns
when the lane should run again. The sending itself, with its guarantees, is `sending.claim_send`.
"""

import contextlib
import logging
import time
import uuid

import redis
from django.db import InterfaceError, OperationalError, connection
from django.db.models import Count, Min, Q
from django.utils import timezone

from ..conf import channel_setting, get_setting
from ..logging import log_context
from ..models import OPEN_DELIVERY_STATUSES, UNSENT_DELIVERY_STATUSES, Delivery, Job, JobStatus
from ..senders import sender_for
from ..stores import get_batch_gate, get_rate_limiter
from .claims import RELEASED, Claim, SendReport, deliveries_claim, deliveries_record
from .finishing import job_finish
from .sending import MAX_COUNTDOWN, REDIS_DOWN_WAIT, claim_send

logger = logging.getLogger(__name__)

# How long a batch that enters its job's gate holds it before its first hand-over moves it on:
# the claim, the reservation (slots up to RATE_LIMIT_MAX_WAIT ahead) and this margin.
GATE_MARGIN = 1.0
RECORD_RETRY_INTERVAL = 1.0


def job_batch_send(*, job_id: object) -> float | None:
    """Send the next batch of a queued job; called by the batch task of one lane.

    Returns the seconds after which the lane should run again, or None when there is nothing
    left for it (the job was finished here or by another lane).
    """
    job = Job.objects.filter(id=job_id).first()
    if job is None or not job.is_active:
        return None
    batch_size = channel_setting(job.channel, "BATCH_SIZE")
    pause = channel_setting(job.channel, "BATCH_DELAY")
    horizon = get_setting("RATE_LIMIT_MAX_WAIT")
    batch_id = uuid.uuid4().hex
    try:
        if pause and (wait := get_batch_gate().enter(job.id, batch_id, horizon + GATE_MARGIN)):
            return min(wait, MAX_COUNTDOWN)  # another lane's batch, or the pause after it
        # Chosen before the claim, so that a provider that cannot be built strands no rows.
        sender = sender_for(job)
        claim = deliveries_claim(job=job, limit=batch_size)
    except redis.RedisError as err:
        logger.warning("redis unavailable, job %s waits: %s", job.id, err)
        return REDIS_DOWN_WAIT
    if not claim.deliveries:
        if pause:
            with contextlib.suppress(redis.RedisError):
                get_batch_gate().open(job.id)
        return _idle_wait(job)
    _job_mark_running(job)
    limiter = get_rate_limiter(job.channel, sender.provider)
    with log_context(job_id=job.id, channel=job.channel, provider=sender.provider):
        report = claim_send(
            job=job,
            claim=claim,
            sender=sender,
            limiter=limiter,
            horizon=horizon,
            pause=pause,
            batch_id=batch_id,
        )
        if pause:
            with contextlib.suppress(redis.RedisError):
                # The pause counts from the batch's end.
                get_batch_gate().push(job.id, batch_id, pause)
        outcomes_record(job=job, claim=claim, report=report)
    if report.count(RELEASED):
        return min(report.wait, MAX_COUNTDOWN)
    if len(claim.deliveries) < batch_size:
        return 0.0
    return pause


def outcomes_record(*, job: Job, claim: Claim, report: SendReport) -> None:
    """`deliveries_record`, retried while the database is briefly away (a restart).

    Recording only touches rows the claim still holds, so a retry cannot overwrite anything;
    giving up would leave sent messages to recovery, which could only call them `unknown`.
    """
    deadline = time.monotonic() + get_setting("DELIVERY_LEASE") / 2
    while True:
        try:
            deliveries_record(job=job, claim=claim, report=report)
            return
        except (OperationalError, InterfaceError) as err:
            if time.monotonic() > deadline:
                raise
            logger.warning("cannot record job %s's batch yet, retrying: %s", job.id, err)
            connection.close()  # the next query reconnects
            time.sleep(RECORD_RETRY_INTERVAL)


def _idle_wait(job: Job) -> float | None:
    """Nothing claimable now: finish the job, wait for its next retry, or end the lane."""
    now = timezone.now()
    unsent = Q(status__in=UNSENT_DELIVERY_STATUSES)
    summary = Delivery.objects.filter(job=job, status__in=OPEN_DELIVERY_STATUSES).aggregate(
        open=Count("id"),
        due=Count(
            "id", filter=unsent & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        ),
        next_retry=Min("next_attempt_at", filter=unsent),
    )
    if not summary["open"]:
        job_finish(job=job)
        return None
    if summary["due"]:
        return 0.5  # rows locked by another lane's claim in progress
    if summary["next_retry"] is not None:
        return min(max((summary["next_retry"] - now).total_seconds(), 0.0), MAX_COUNTDOWN)
    return None  # only other lanes' batches in flight: they finish the job


def _job_mark_running(job: Job) -> None:
    if job.status == JobStatus.QUEUED:
        Job.objects.filter(id=job.id, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING, started_at=timezone.now()
        )
        job.status = JobStatus.RUNNING
