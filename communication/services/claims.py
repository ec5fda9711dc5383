"""Claims on delivery rows: taking a batch, and recording what became of it.

- A delivery is claimed by one conditional UPDATE (unsent and due → `sending`, with a claim
  token and a lease). Only the claim holder may record its outcome, in one bulk UPDATE.
- The claim's hand-over record (Redis) exists before any row is claimed, so a worker that dies
  mid-batch always leaves enough behind for recovery to tell a send from a non-attempt.
"""

import contextlib
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from ..conf import get_setting
from ..metrics import record_outcomes
from ..models import ACTIVE_JOB_STATUSES, UNSENT_DELIVERY_STATUSES, Delivery, DeliveryStatus, Job
from ..progress import status_changes
from ..stores import get_job_runtime, get_progress_store
from .finishing import job_refresh_final_counts

RELEASED = "released"


@dataclass
class Claim:
    token: uuid.UUID
    deliveries: list[Delivery]
    previous: dict[int, str]  # delivery id -> status before the claim


@dataclass
class Outcome:
    delivery: Delivery
    status: str  # a DeliveryStatus, or RELEASED: not attempted, give the row back
    error: str = ""
    provider_message_id: str = ""
    retry_in: float | None = None
    throttled: bool = False  # the provider asked the whole channel to slow down


@dataclass
class SendReport:
    outcomes: list[Outcome] = field(default_factory=list)
    wait: float = 0.0  # how long the channel asked us to hold off (rate limit, throttling)
    provider: str = ""  # who the messages were handed to

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)


def deliveries_claim(*, job: Job, limit: int, ids: Iterable[int] | None = None) -> Claim:
    """Claim up to `limit` unsent deliveries of `job` that are due now (or exactly `ids`)."""
    now = timezone.now()
    token = uuid.uuid4()
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    unsent = Delivery.objects.filter(job=job, status__in=UNSENT_DELIVERY_STATUSES).filter(due)
    if ids is not None:
        unsent = unsent.filter(id__in=list(ids))
    # The hand-over record exists before any row is claimed: a claim is never left without one.
    get_job_runtime().open_claim(token)
    with transaction.atomic():
        rows = list(
            unsent.select_for_update(skip_locked=True)
            .order_by("id")
            .values_list("id", "status")[:limit]
        )
        Delivery.objects.filter(
            id__in=[pk for pk, _ in rows], status__in=UNSENT_DELIVERY_STATUSES
        ).update(
            status=DeliveryStatus.SENDING,
            claim_token=token,
            lease_expires_at=now + timedelta(seconds=get_setting("DELIVERY_LEASE")),
            attempts=F("attempts") + 1,
            updated_at=now,
        )
    deliveries = list(Delivery.objects.filter(id__in=[pk for pk, _ in rows], claim_token=token))
    deliveries.sort(key=lambda delivery: delivery.pk)
    claim = Claim(token=token, deliveries=deliveries, previous=dict(rows))
    transitions = [(claim.previous[d.pk], DeliveryStatus.SENDING) for d in deliveries]
    get_progress_store().move(job.id, status_changes(transitions))
    return claim


def deliveries_record(*, job: Job, claim: Claim, report: SendReport) -> None:
    """Write the outcomes of a claim in bulk, only where the claim still holds."""
    now = timezone.now()
    cancelled = not _job_is_active(job.id)
    by_id = {outcome.delivery.pk: outcome for outcome in report.outcomes}
    transitions = []
    with transaction.atomic():
        held = set(
            Delivery.objects.select_for_update()
            .filter(id__in=list(by_id), claim_token=claim.token, status=DeliveryStatus.SENDING)
            .values_list("id", flat=True)
        )
        changed = []
        for pk in held:
            outcome = by_id[pk]
            status = _final_status(outcome, claim.previous[pk], cancelled)
            _apply(outcome, status, report.provider, now)
            changed.append(outcome.delivery)
            transitions.append((DeliveryStatus.SENDING, status))
        Delivery.objects.bulk_update(changed, RECORDED_FIELDS)
    get_progress_store().move(job.id, status_changes(transitions))
    outcomes = Counter(str(o.status) for o in report.outcomes if o.status != RELEASED)
    record_outcomes(job.channel, report.provider, outcomes.items())
    with contextlib.suppress(redis.RedisError):
        get_job_runtime().close_claim(claim.token)
    if cancelled:
        job_refresh_final_counts(job_id=job.id)


RECORDED_FIELDS = [
    "status",
    "attempts",
    "last_error",
    "provider",
    "provider_message_id",
    "sent_at",
    "next_attempt_at",
    "claim_token",
    "lease_expires_at",
    "updated_at",
]


def _apply(outcome: Outcome, status: str, provider: str, now: datetime) -> None:
    delivery = outcome.delivery
    delivery.status = status
    delivery.claim_token = None
    delivery.lease_expires_at = None
    delivery.updated_at = now
    if outcome.status == RELEASED:
        delivery.attempts -= 1  # never attempted: waiting for a slot costs no retry
        return
    delivery.provider = provider
    delivery.last_error = outcome.error
    delivery.provider_message_id = outcome.provider_message_id
    delivery.sent_at = now if status == DeliveryStatus.SENT else None
    delivery.next_attempt_at = (
        now + timedelta(seconds=outcome.retry_in) if outcome.retry_in is not None else None
    )


def _final_status(outcome: Outcome, previous: str, cancelled: bool) -> str:
    if outcome.status == RELEASED:
        return DeliveryStatus.CANCELLED if cancelled else previous
    if outcome.status == DeliveryStatus.RETRY and cancelled:
        return DeliveryStatus.CANCELLED
    return outcome.status


def _job_is_active(job_id: object) -> bool:
    return Job.objects.filter(id=job_id, status__in=ACTIVE_JOB_STATUSES).exists()
