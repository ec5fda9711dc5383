"""The recovery sweep: finish what crashed workers and lost Redis state left behind.

The database is the source of truth. The sweep (Celery beat every `SWEEP_INTERVAL` seconds, one
per channel, and every worker as it starts) does two things:

1. A claim whose owner is dead (its liveness record expired, see `liveness`) or whose lease
   expired is resolved: its hand-over record is taken atomically, then deliveries whose send
   the provider confirmed become `sent`, those merely handed to the provider become `unknown`
   (it may have accepted them; a blind re-send could duplicate), and those the owner had not
   reached become unsent again, with the attempt given back. If the hand-over record is gone
   too (Redis lost its data), they become `unknown`. The lease stays as the backstop for an
   owner that is alive but stuck.
2. Active jobs without a live lane (no lanes, or a lane whose holder is dead) are dispatched
   again, or finished if nothing is left.
"""

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..handovers import OwnerAlive, Record
from ..liveness import alive_key
from ..models import ACTIVE_JOB_STATUSES, OPEN_DELIVERY_STATUSES, Delivery, DeliveryStatus, Job
from ..progress import status_changes
from ..runtime import QUEUED
from ..stores import get_handovers, get_job_runtime, get_liveness, get_progress_store
from .finishing import job_finish
from .jobs import job_dispatch

logger = logging.getLogger(__name__)

UNKNOWN_REASON = "the worker stopped after handing the message to the provider; outcome unknown"
# A job younger than this is still being dispatched by whoever created it.
RESUME_GRACE = timedelta(seconds=5)


def deliveries_recover(*, channel: str) -> int:
    """Resolve the claims of dead owners and expired leases; return the deliveries resolved."""
    now = timezone.now()
    in_flight = Delivery.objects.filter(
        job__channel=channel, status=DeliveryStatus.SENDING
    ).values_list("id", "job_id", "claim_token", "attempts", "lease_expires_at")
    claims: dict[object, list[tuple[int, object, int]]] = defaultdict(list)
    expired: set[object] = set()
    for pk, job_id, token, attempts, lease_expires_at in in_flight:
        claims[token].append((pk, job_id, attempts))
        if lease_expires_at is None or lease_expires_at < now:
            expired.add(token)
    if not claims:
        return 0
    liveness = get_liveness()
    judge_owners = liveness.trustworthy()
    resolved = 0
    for token, rows in claims.items():
        record = _take_claim(token, expired=token in expired, judge_owners=judge_owners)
        if record is not _KEEP:
            resolved += _resolve(token, rows, record, now)  # type: ignore[arg-type]
            get_handovers().close(token)
    if resolved:
        logger.warning("recovered %d %s deliveries from abandoned claims", resolved, channel)
    return resolved


_KEEP = object()  # the claim's owner is alive and its lease holds: leave the claim alone


def _take_claim(token: object, *, expired: bool, judge_owners: bool) -> object:
    """The claim's hand-over record (None if it was lost), or _KEEP."""
    handovers = get_handovers()
    if expired:
        return handovers.take(token)
    if not judge_owners:
        return _KEEP
    owner = handovers.owner(token)
    if owner is None:
        return _KEEP  # record lost with Redis's data: only the lease can tell
    try:
        return handovers.take(token, unless_alive=owner, alive_key=alive_key(owner))
    except OwnerAlive:
        return _KEEP


def _resolve(
    token: object, rows: list[tuple[int, object, int]], record: Record | None, now: datetime
) -> int:
    resolved = 0
    for pk, job_id, attempts in rows:
        changes: dict[str, object]
        if record is not None and pk in record.sent:
            confirmed = record.sent[pk]
            status = DeliveryStatus.SENT
            changes = {
                "provider": confirmed.provider,
                "provider_message_id": confirmed.message_id,
                "sent_at": now,
                "last_error": "",
            }
        elif record is None or pk in record.handed:
            status, changes = DeliveryStatus.UNKNOWN, {"last_error": UNKNOWN_REASON}
        else:
            status = DeliveryStatus.PENDING if attempts <= 1 else DeliveryStatus.RETRY
            changes = {"attempts": F("attempts") - 1, "next_attempt_at": now}
        with transaction.atomic():
            updated = Delivery.objects.filter(
                id=pk, claim_token=token, status=DeliveryStatus.SENDING
            ).update(
                status=status, claim_token=None, lease_expires_at=None, updated_at=now, **changes
            )
        if updated:
            resolved += 1
            get_progress_store().move(job_id, status_changes([(DeliveryStatus.SENDING, status)]))
    return resolved


def jobs_resume(*, channel: str) -> int:
    """Dispatch again (or finish) active jobs without a live lane; return how many."""
    jobs = list(
        Job.objects.filter(
            channel=channel,
            status__in=ACTIVE_JOB_STATUSES,
            created_at__lt=timezone.now() - RESUME_GRACE,
        )
    )
    if not jobs:
        return 0
    holders = get_job_runtime().lane_holders([job.id for job in jobs])
    dead = _dead_holders(holders)
    resumed = 0
    for job in jobs:
        lanes = holders.get(job.id)
        if lanes and not (lanes & dead):
            continue
        if job_finish(job=job):
            continue
        if Delivery.objects.filter(job=job, status__in=OPEN_DELIVERY_STATUSES).exists():
            why = "a lane's holder is dead" if lanes else "no live batch chain"
            logger.warning("job %s: %s; dispatching it again", job.id, why)
            job_dispatch(job=job)
            resumed += 1
    return resumed


def _dead_holders(holders: dict[object, set[str]]) -> set[str]:
    everyone = set().union(*holders.values()) - {QUEUED}
    liveness = get_liveness()
    if not everyone or not liveness.trustworthy():
        return set()
    return everyone - liveness.alive(everyone)


def sweep(*, channel: str) -> dict[str, int]:
    """One recovery pass over a channel's jobs."""
    return {
        "recovered": deliveries_recover(channel=channel),
        "resumed": jobs_resume(channel=channel),
    }
