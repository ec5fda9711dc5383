"""The recovery sweep's decisions about abandoned claims and lanes (SPEC §4: never a blind
re-send), on a real Redis."""

import time
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from communication import liveness
from communication.handovers import CANCELLED, HANDED, LOST, Confirmed
from communication.models import Delivery, DeliveryStatus
from communication.services.claims import deliveries_claim
from communication.services.recovery import deliveries_recover, jobs_resume
from communication.stores import (
    get_handovers,
    get_job_runtime,
    get_liveness,
    get_redis,
    process_owner,
)

from ..factories import DeliveryFactory, SmsJobFactory
from ..servers import wait_until

pytestmark = pytest.mark.django_db

# After recovery: the send handed over (on the wire) is in doubt, the rest may go out again.
FIRST_UNKNOWN_REST_PENDING = {
    "+233241000000": ("unknown", 1),
    "+233241000001": ("pending", 0),
    "+233241000002": ("pending", 0),
}


def a_minute_ago() -> datetime:
    return timezone.now() - timedelta(minutes=1)


def expire(claim) -> None:
    Delivery.objects.filter(claim_token=claim.token).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def statuses(job) -> dict[str, tuple[str, int]]:
    return {d.recipient: (d.status, d.attempts) for d in job.deliveries.all()}


def trusted_liveness() -> None:
    """Liveness records as after a full TTL of uptime: a missing one means a dead process."""
    wait_until(lambda: get_redis().info("server")["uptime_in_seconds"] >= liveness.SETTLE, 15)
    get_redis().set(liveness.EPOCH_KEY, int(time.time()) - 60)
    get_liveness().beat(process_owner())


def claim_by(owner: str, job, limit: int = 3):
    """A claim as a process named `owner` would have made it."""
    claim = deliveries_claim(job=job, limit=limit)
    get_redis().lset(f"claim:{claim.token}:handed", 0, owner)
    return claim


def test_handed_over_becomes_unknown_and_the_rest_unsent_again(user):
    job = SmsJobFactory(owner=user)
    claim = deliveries_claim(job=job, limit=3)
    get_handovers().hand_over(claim.token, job.id, [claim.deliveries[0].pk])
    expire(claim)

    assert deliveries_recover(channel="sms") == 3

    assert statuses(job) == FIRST_UNKNOWN_REST_PENDING


def test_a_confirmed_send_is_recorded_as_sent(user):
    """Only the send on the wire when the worker died is in doubt: those before it were
    confirmed with the next hand-over."""
    job = SmsJobFactory(owner=user)
    claim = deliveries_claim(job=job, limit=3)
    first, second, _ = (d.pk for d in claim.deliveries)
    get_handovers().hand_over(claim.token, job.id, [first])
    confirmed = [Confirmed(first, "webhook", "msg-1")]
    get_handovers().hand_over(claim.token, job.id, [second], confirmed=confirmed)
    expire(claim)

    assert deliveries_recover(channel="sms") == 3

    assert statuses(job) == {
        "+233241000000": ("sent", 1),
        "+233241000001": ("unknown", 1),
        "+233241000002": ("pending", 0),
    }
    sent = Delivery.objects.get(id=first)
    assert (sent.provider, sent.provider_message_id) == ("webhook", "msg-1") and sent.sent_at


def test_a_lost_handover_record_means_unknown(user, redis_server):
    job = SmsJobFactory(owner=user, size=2)
    claim = deliveries_claim(job=job, limit=2)
    redis_server.client().flushall()
    expire(claim)

    deliveries_recover(channel="sms")

    assert {status for status, _ in statuses(job).values()} == {"unknown"}


def test_live_claims_are_left_alone(user):
    trusted_liveness()
    job = SmsJobFactory(owner=user)
    deliveries_claim(job=job, limit=3)
    assert deliveries_recover(channel="sms") == 0
    assert deliveries_recover(channel="email") == 0


def test_a_dead_owners_claim_is_resolved_before_its_lease_ends(user):
    trusted_liveness()
    job = SmsJobFactory(owner=user)
    claim = claim_by("gone-host:123:abcd", job)
    get_handovers().hand_over(claim.token, job.id, [claim.deliveries[0].pk])

    assert deliveries_recover(channel="sms") == 3

    assert statuses(job) == FIRST_UNKNOWN_REST_PENDING


def test_owners_are_not_judged_right_after_redis_lost_its_data(user):
    job = SmsJobFactory(owner=user)
    claim_by("gone-host:123:abcd", job)
    get_redis().delete(liveness.EPOCH_KEY)
    get_liveness().beat(process_owner())  # the first record written since the loss

    assert not get_liveness().trustworthy()
    assert deliveries_recover(channel="sms") == 0


def test_a_taken_claim_refuses_its_owners_next_hand_over(user):
    """The owner may still be running: once recovery has read the record, nothing more may be
    handed over, so a recipient given back to the queue is never also sent by the old owner."""
    trusted_liveness()
    job = SmsJobFactory(owner=user)
    claim = claim_by("gone-host:123:abcd", job)
    first, second, _ = (d.pk for d in claim.deliveries)
    assert get_handovers().hand_over(claim.token, job.id, [first]) == HANDED

    deliveries_recover(channel="sms")

    assert get_handovers().hand_over(claim.token, job.id, [second]) == LOST
    assert statuses(job)["+233241000001"] == ("pending", 0)


def test_no_hand_over_once_the_job_is_cancelled(user):
    job = SmsJobFactory(owner=user)
    claim = deliveries_claim(job=job, limit=3)
    get_job_runtime().stop(job.id)
    assert get_handovers().hand_over(claim.token, job.id, [claim.deliveries[0].pk]) == CANCELLED


def test_jobs_without_a_live_lane_are_dispatched_again(user):
    trusted_liveness()
    orphan, queued, running, dead = SmsJobFactory.create_batch(
        4, owner=user, created_at=a_minute_ago()
    )
    runtime = get_job_runtime()
    runtime.start_lanes(queued.id, 1)
    [token] = runtime.start_lanes(running.id, 1)
    runtime.advance(running.id, 0, token, process_owner())
    [token] = runtime.start_lanes(dead.id, 1)
    runtime.advance(dead.id, 0, token, "gone-host:123:abcd")

    assert jobs_resume(channel="sms") == 2

    holders = runtime.lane_holders([orphan.id, queued.id, running.id, dead.id])
    assert holders[orphan.id] == holders[dead.id] == holders[queued.id] == {"queued"}
    assert holders[running.id] == {process_owner()}


def test_a_job_with_nothing_left_is_finished_by_the_sweep(user):
    job = SmsJobFactory(owner=user, size=1, created_at=a_minute_ago())
    DeliveryFactory(job=job, status=DeliveryStatus.SENT)
    jobs_resume(channel="sms")
    job.refresh_from_db()
    assert job.status == "completed" and job.completed_count == 1
