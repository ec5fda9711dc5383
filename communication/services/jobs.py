"""Jobs: create, send now or queue, cancel, retry what failed.

`message_send` is what the API, the command line and the best-deals campaign call.
"""

import json
import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from celery import group
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, connections, transaction
from django.utils import timezone

from ..conf import channel_setting, get_setting
from ..exceptions import ApplicationError
from ..models import (
    ACTIVE_JOB_STATUSES,
    UNSENT_DELIVERY_STATUSES,
    Delivery,
    DeliveryStatus,
    Job,
    JobStatus,
)
from ..senders import html_to_text, sender_for
from ..stores import get_job_runtime, get_progress_store, get_rate_limiter
from .batches import job_batch_send, outcomes_record
from .claims import RELEASED, SendReport, deliveries_claim
from .finishing import job_counts_from_db, job_finish, job_refresh_final_counts
from .sending import claim_send

logger = logging.getLogger(__name__)

INSERT_BATCH_SIZE = 5000


@dataclass
class SendResult:
    job: Job
    queued: bool
    report: SendReport | None = None  # outcomes of a synchronous send


@transaction.atomic
def job_create(
    *,
    owner: AbstractBaseUser,
    channel: str,
    recipients: Sequence[str],
    message: str,
    subject: str = "",
    text: str = "",
    template: str = "",
    context: Mapping[str, Any] | None = None,
    recipient_contexts: Mapping[str, Mapping[str, Any]] | None = None,
    queued: bool = True,
) -> Job:
    """Create a job and one delivery row per recipient, in one transaction.

    Recipients must already be validated and de-duplicated. Nothing is sent here.
    """
    job = Job.objects.create(
        owner=owner,
        channel=channel,
        subject=subject,
        message=message,
        text=text or (html_to_text(message) if channel == "email" and not template else ""),
        template=template,
        context=dict(context) if context else None,
        queued=queued,
        total=len(recipients),
    )
    deliveries_insert(job=job, recipients=recipients, contexts=recipient_contexts or {})
    return job


def deliveries_insert(
    *, job: Job, recipients: Sequence[str], contexts: Mapping[str, Mapping[str, Any]]
) -> None:
    """One pending delivery per recipient. On PostgreSQL rows are streamed with COPY: for
    100,000 recipients Django's bulk_create spends seconds building and preparing objects."""
    if connection.vendor != "postgresql":
        Delivery.objects.bulk_create(
            (Delivery(job=job, recipient=r, context=contexts.get(r)) for r in recipients),
            batch_size=INSERT_BATCH_SIZE,
        )
        return
    fields = [f for f in Delivery._meta.concrete_fields if not f.primary_key]
    template = Delivery(job=job)
    row = [f.get_db_prep_save(f.pre_save(template, True), connection) for f in fields]
    columns = [f.column for f in fields]
    at_recipient, at_context = columns.index("recipient"), columns.index("context")
    table = connection.ops.quote_name(Delivery._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
    ):
        for recipient in recipients:
            context = contexts.get(recipient)
            row[at_recipient] = recipient
            row[at_context] = json.dumps(context) if context is not None else None
            copy.write_row(row)


def message_send(
    *,
    owner: AbstractBaseUser,
    channel: str,
    recipients: Sequence[str],
    message: str,
    subject: str = "",
    text: str = "",
    force_queue: bool = False,
    template: str = "",
    context: Mapping[str, Any] | None = None,
    recipient_contexts: Mapping[str, Mapping[str, Any]] | None = None,
) -> SendResult:
    """Send to validated recipients: synchronously when few, otherwise as a queued job.

    A synchronous send that cannot get rate-limit slots within `SYNC_SEND_WAIT` seconds is
    queued instead (`SendResult.queued` is then True).
    """
    queued = force_queue or len(recipients) >= get_setting("BULK_THRESHOLD")
    job = job_create(
        owner=owner,
        channel=channel,
        recipients=recipients,
        message=message,
        subject=subject,
        text=text,
        template=template,
        context=context,
        recipient_contexts=recipient_contexts,
        queued=queued,
    )
    if not queued:
        report = job_send_now(job=job)
        if report is not None:
            return SendResult(job=job, queued=False, report=report)
        Job.objects.filter(id=job.id).update(queued=True)
        job.queued = True
    transaction.on_commit(lambda: job_dispatch(job=job))
    return SendResult(job=job, queued=True)


def job_send_now(*, job: Job) -> SendReport | None:
    """Send a small job within the request; None if the rate limit has no room for it now
    (within `SYNC_SEND_WAIT` seconds), in which case nothing was sent."""
    try:
        claim = deliveries_claim(job=job, limit=job.total)
    except redis.RedisError as err:
        logger.warning("redis unavailable; job %s is queued for later: %s", job.id, err)
        return None
    sender = sender_for(job)
    report = claim_send(
        job=job,
        claim=claim,
        sender=sender,
        limiter=get_rate_limiter(job.channel, sender.provider),
        horizon=get_setting("SYNC_SEND_WAIT"),
        all_or_nothing=True,
    )
    outcomes_record(job=job, claim=claim, report=report)
    if report.count(RELEASED) == len(claim.deliveries):
        return None
    Job.objects.filter(id=job.id).update(status=JobStatus.RUNNING, started_at=timezone.now())
    if not job_finish(job=job):
        # Transient failures (and anything released) wait for their retry in the queue.
        Job.objects.filter(id=job.id).update(queued=True)
        transaction.on_commit(lambda: job_dispatch(job=job))
    job.refresh_from_db()
    return report


def job_dispatch(*, job: Job) -> None:
    """Start (or restart) the lanes that send a job's batches.

    Safe to call again at any time: new lanes replace the old ones, whose tasks then stop.
    Enqueue failures are logged and left to the recovery sweep.
    """
    if get_setting("EMBEDDED"):
        threading.Thread(target=_run_in_process, args=(job.id,), daemon=True).start()
        return
    try:
        progress = get_progress_store()
        if progress.get(job.id) is None:
            progress.seed(job.id, job_counts_from_db(job.id))
        open_count = Delivery.objects.filter(job=job, status__in=UNSENT_DELIVERY_STATUSES).count()
        batches = math.ceil(open_count / channel_setting(job.channel, "BATCH_SIZE"))
        lanes = max(1, min(get_setting("BATCHES_IN_FLIGHT"), batches))
        tokens = get_job_runtime().start_lanes(job.id, lanes)
        # Imported here: the tasks module imports the services, which import this one.
        from ..tasks import send_batch as send_batch_task

        # The lanes' first links, as one group (no result backend: nothing waits for them).
        links = (
            send_batch_task.si(str(job.id), job.channel, lane, token).set(queue=job.channel)
            for lane, token in enumerate(tokens)
        )
        group(links).apply_async()
    except Exception:
        logger.exception("could not dispatch job %s; the recovery sweep will retry", job.id)


def _run_in_process(job_id: object) -> None:
    """Embedded mode: one lane in a thread of this process, pausing as the queue would."""
    try:
        while (wait := job_batch_send(job_id=job_id)) is not None:
            time.sleep(wait)
    except Exception:
        logger.exception("job %s failed in process", job_id)
    finally:
        connections.close_all()  # this thread's connections; close_old_connections keeps them


def job_cancel(*, job: Job) -> Job:
    """Cancel a job: nothing more is sent; unsent recipients become cancelled.

    Batches in progress stop before their next send (they check the job's flag).
    """
    now = timezone.now()
    with transaction.atomic():
        cancelled = Job.objects.filter(id=job.id, status__in=ACTIVE_JOB_STATUSES).update(
            status=JobStatus.CANCELLED, finished_at=now
        )
        if not cancelled:
            job.refresh_from_db()
            raise ApplicationError(f"job is already {job.status}", status=409)
        Delivery.objects.filter(job=job, status__in=UNSENT_DELIVERY_STATUSES).update(
            status=DeliveryStatus.CANCELLED, next_attempt_at=None, updated_at=now
        )
    try:
        get_job_runtime().stop(job.id)
    except Exception:
        # Batches in progress cannot hand anything over without Redis either.
        logger.warning("could not flag job %s as cancelled in Redis", job.id)
    get_progress_store().delete(job.id)
    job_refresh_final_counts(job_id=job.id)
    job.refresh_from_db()
    return job


def job_retry_failed(*, job: Job, include_unknown: bool = False) -> int:
    """Queue a job's failed recipients again (and those of unknown outcome, if asked).

    Returns how many were queued. Their retry budget starts afresh.
    """
    if job.status == JobStatus.CANCELLED:
        raise ApplicationError("a cancelled job cannot be retried", status=409)
    statuses = [DeliveryStatus.FAILED] + ([DeliveryStatus.UNKNOWN] if include_unknown else [])
    now = timezone.now()
    with transaction.atomic():
        count = Delivery.objects.filter(job=job, status__in=statuses).update(
            status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=None, updated_at=now
        )
        if not count:
            raise ApplicationError("the job has no failed recipients to retry", status=409)
        Job.objects.filter(id=job.id).exclude(status__in=ACTIVE_JOB_STATUSES).update(
            status=JobStatus.QUEUED, finished_at=None, queued=True
        )
        get_progress_store().delete(job.id)
        transaction.on_commit(lambda: job_dispatch(job=job))
    job.refresh_from_db()
    return count
