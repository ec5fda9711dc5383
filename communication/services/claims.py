"""Claims on delivery rows: taking a batch, and recording what became of it.

- A delivery is claimed by one conditional UPDATE (unsent and due → `sending`, with a claim
  token and a lease). Only the claim holder may record its outcome, in one bulk UPDATE.
- The claim's hand-over record (Redis, `handovers`) exists before any row is claimed and names
  the process that holds the claim, so a worker that dies mid-batch always leaves enough behind
  for recovery to tell a send from a non-attempt, and to see within seconds that it is gone.
"""

import contextlib
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis
from django.db import connection
from django.utils import timezone

from ..conf import get_setting
from ..metrics import record_outcomes
from ..models import ACTIVE_JOB_STATUSES, UNSENT_DELIVERY_STATUSES, Delivery, DeliveryStatus, Job
from ..progress import status_changes
from ..stores import get_handovers, get_progress_store, process_owner
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


def deliveries_claim(*, job: Job, limit: int) -> Claim:
    """Claim up to `limit` unsent deliveries of `job` that are due now, in one statement."""
    now = timezone.now()
    token = uuid.uuid4()
    # The hand-over record exists before any row is claimed: a claim is never left without one.
    get_handovers().open(token, process_owner())
    deliveries = sorted(_claim_rows(job, limit, token, now), key=lambda d: d.pk)
    # Attempts count only real attempts, so an unsent row with none is pending, else retry.
    previous = {
        d.pk: DeliveryStatus.PENDING if d.attempts == 1 else DeliveryStatus.RETRY
        for d in deliveries
    }
    claim = Claim(token=token, deliveries=deliveries, previous=previous)
    transitions = [(previous[d.pk], DeliveryStatus.SENDING) for d in deliveries]
    get_progress_store().move(job.id, status_changes(transitions))
    return claim


def _claim_rows(job: Job, limit: int, token: uuid.UUID, now: datetime) -> list[Delivery]:
    """UPDATE … WHERE id IN (the first `limit` due rows, skipping rows other claims lock)
    RETURNING the claimed rows themselves."""
    table = connection.ops.quote_name(Delivery._meta.db_table)
    skip_locked = (
        " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    )
    lease = now + timedelta(seconds=get_setting("DELIVERY_LEASE"))
    token_value = Delivery._meta.get_field("claim_token").get_db_prep_value(token, connection)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in Delivery._meta.concrete_fields)
    due = (
        f"SELECT id FROM {table} WHERE job_id = %s AND status IN (%s, %s)"
        f" AND (next_attempt_at IS NULL OR next_attempt_at <= %s) ORDER BY id LIMIT %s{skip_locked}"
    )
    sql = (
        f"UPDATE {table} SET status = %s, claim_token = %s, lease_expires_at = %s,"
        f" attempts = attempts + 1, updated_at = %s"
        f" WHERE id IN ({due}) AND status IN (%s, %s) RETURNING {columns}"
    )
    unsent = [str(s) for s in UNSENT_DELIVERY_STATUSES]
    params = [
        DeliveryStatus.SENDING.value,
        token_value,
        _db_datetime(lease),
        _db_datetime(now),
        _db_uuid(job.id),
        *unsent,
        _db_datetime(now),
        limit,
        *unsent,
    ]
    return list(Delivery.objects.raw(sql, params))


def _db_datetime(value: datetime | None) -> object:
    return connection.ops.adapt_datetimefield_value(value)


def _db_uuid(value: uuid.UUID) -> object:
    return Job._meta.pk.get_db_prep_value(value, connection)


def deliveries_record(*, job: Job, claim: Claim, report: SendReport) -> None:
    """Write the outcomes of a claim in one statement, only where the claim still holds."""
    now = timezone.now()
    undecided = any(o.status in (RELEASED, DeliveryStatus.RETRY) for o in report.outcomes)
    # Only released and retried rows depend on whether the job was cancelled meanwhile.
    cancelled = undecided and not _job_is_active(job.id)
    rows = []
    for outcome in report.outcomes:
        status = _final_status(outcome, claim.previous[outcome.delivery.pk], cancelled)
        _apply(outcome, status, report.provider, now)
        rows.append(outcome.delivery)
    written = _write_rows(rows, claim.token, now)
    transitions = [(DeliveryStatus.SENDING, d.status) for d in rows if d.pk in written]
    get_progress_store().move(job.id, status_changes(transitions))
    outcomes = Counter(str(o.status) for o in report.outcomes if o.status != RELEASED)
    record_outcomes(job.channel, report.provider, outcomes.items())
    with contextlib.suppress(redis.RedisError):
        get_handovers().close(claim.token)
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
]


def _write_rows(rows: list[Delivery], token: uuid.UUID, now: datetime) -> set[int]:
    """One UPDATE writing every row's recorded fields, where the claim token still matches
    (recovery may have taken an expired claim); returns the ids written.

    PostgreSQL gets one array per column (`unnest`), which it plans in well under a
    millisecond; other databases get a VALUES list.
    """
    if not rows:
        return set()
    fields = [Delivery._meta.pk, *(Delivery._meta.get_field(n) for n in RECORDED_FIELDS)]
    columns = [
        [f.get_db_prep_save(getattr(row, f.attname), connection) for row in rows] for f in fields
    ]
    names = ", ".join(f.column for f in fields)
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
        source, params = f"unnest({arrays}) AS v({names})", list(columns)
    else:
        row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
        source = (
            f"(WITH v({names}) AS (VALUES {', '.join([row_sql] * len(rows))}) SELECT * FROM v) AS v"
        )
        params = [value for row in zip(*columns, strict=True) for value in row]
    table = connection.ops.quote_name(Delivery._meta.db_table)
    assignments = ", ".join(f"{name} = v.{name}" for name in RECORDED_FIELDS)
    sql = (
        f"UPDATE {table} SET {assignments}, claim_token = NULL, lease_expires_at = NULL,"
        f" updated_at = %s FROM {source} WHERE {table}.id = v.id"
        f" AND {table}.claim_token = %s AND {table}.status = %s RETURNING {table}.id"
    )
    token_value = Delivery._meta.get_field("claim_token").get_db_prep_value(token, connection)
    params = [_db_datetime(now), *params, token_value, DeliveryStatus.SENDING.value]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def _apply(outcome: Outcome, status: str, provider: str, now: datetime) -> None:
    delivery = outcome.delivery
    delivery.status = status
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
