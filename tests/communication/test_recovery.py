"""The recovery sweep's decisions about expired claims (SPEC §4: never a blind re-send)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from communication.models import Delivery, DeliveryStatus, Job
from communication.services.claims import deliveries_claim
from communication.services.jobs import job_create
from communication.services.recovery import deliveries_recover_expired, jobs_resume
from communication.stores import get_job_runtime

pytestmark = pytest.mark.django_db


def make_job(user, n=3):
    return job_create(
        owner=user,
        channel="sms",
        recipients=[f"+23324100{i:04d}" for i in range(n)],
        message="Hi",
    )


def expire(claim) -> None:
    Delivery.objects.filter(claim_token=claim.token).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def statuses(job) -> dict[str, tuple[str, int]]:
    return {d.recipient: (d.status, d.attempts) for d in job.deliveries.all()}


def test_handed_over_becomes_unknown_and_the_rest_unsent_again(user):
    job = make_job(user)
    claim = deliveries_claim(job=job, limit=3)
    get_job_runtime().mark_handed(claim.token, claim.deliveries[0].pk)
    expire(claim)

    assert deliveries_recover_expired(channel="sms") == 3

    assert statuses(job) == {
        "+233241000000": ("unknown", 1),
        "+233241000001": ("pending", 0),
        "+233241000002": ("pending", 0),
    }


def test_a_lost_handover_record_means_unknown(user, redis_server):
    job = make_job(user, n=2)
    claim = deliveries_claim(job=job, limit=2)
    redis_server.client().flushall()
    expire(claim)

    deliveries_recover_expired(channel="sms")

    assert {status for status, _ in statuses(job).values()} == {"unknown"}


def test_live_claims_are_left_alone(user):
    job = make_job(user)
    deliveries_claim(job=job, limit=3)
    assert deliveries_recover_expired(channel="sms") == 0
    assert deliveries_recover_expired(channel="email") == 0


def test_a_job_without_lanes_is_dispatched_again_and_one_with_lanes_is_not(user):
    orphan, alive = make_job(user), make_job(user)
    Job.objects.update(created_at=timezone.now() - timedelta(minutes=1))
    get_job_runtime().start_lanes(alive.id, 1)

    assert jobs_resume(channel="sms") == 1
    assert get_job_runtime().jobs_with_lanes([orphan.id, alive.id]) == {orphan.id, alive.id}


def test_a_job_with_nothing_left_is_finished_by_the_sweep(user):
    job = make_job(user, n=1)
    Job.objects.update(created_at=timezone.now() - timedelta(minutes=1))
    Delivery.objects.update(status=DeliveryStatus.SENT)
    jobs_resume(channel="sms")
    job.refresh_from_db()
    assert job.status == "completed" and job.completed_count == 1
