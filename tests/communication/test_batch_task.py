"""One batch task, delivered twice, sends nothing twice; claims guard every send."""

import pytest
from django.core import mail

from communication.models import Delivery, DeliveryStatus, Job
from communication.services.batches import job_batch_send
from communication.services.claims import Outcome, SendReport, deliveries_claim, deliveries_record
from communication.stores import get_batch_gate, get_job_runtime, process_owner
from communication.tasks import send_batch

from ..factories import JobFactory
from ..helpers import addresses, configure

pytestmark = pytest.mark.django_db


@pytest.fixture
def fast(settings):
    configure(
        settings,
        EMAIL_RATE_LIMIT="1000/s",
        EMAIL_BATCH_SIZE=5,
        EMAIL_BATCH_DELAY=0,  # lanes run freely: the pause between batches is tested below
    )


def test_the_same_link_delivered_twice_sends_one_batch(user, fast):
    job = JobFactory(owner=user, size=12)
    [token] = get_job_runtime().start_lanes(job.id, 1)

    send_batch(str(job.id), "email", 0, token)
    send_batch(str(job.id), "email", 0, token)  # redelivered: its token is stale now

    assert len(mail.outbox) == 5
    assert Delivery.objects.filter(job=job, status=DeliveryStatus.SENT).count() == 5


def test_a_superseded_lane_stops(user, fast):
    job = JobFactory(owner=user, size=12)
    [old] = get_job_runtime().start_lanes(job.id, 1)
    [new] = get_job_runtime().start_lanes(job.id, 1)  # the sweep dispatched the job again

    send_batch(str(job.id), "email", 0, old)
    assert not mail.outbox
    send_batch(str(job.id), "email", 0, new)
    assert len(mail.outbox) == 5


def test_a_lane_survives_redis_losing_its_state(user, fast, redis_server):
    job = JobFactory(owner=user, size=12)
    [token] = get_job_runtime().start_lanes(job.id, 1)
    redis_server.client().flushall()
    send_batch(str(job.id), "email", 0, token)
    assert len(mail.outbox) == 5


def test_lanes_run_the_job_to_its_end_and_finish_it_once(user, fast):
    job = JobFactory(owner=user, size=12)
    tokens = get_job_runtime().start_lanes(job.id, 2)
    pending = [(lane, token) for lane, token in enumerate(tokens)]
    runtime = get_job_runtime()
    steps = 0
    while pending and steps < 20:
        lane, token = pending.pop(0)
        successor = runtime.advance(job.id, lane, token, process_owner())
        if job_batch_send(job_id=job.id) is not None:
            pending.append((lane, successor))
        steps += 1
    job.refresh_from_db()
    assert job.status == "completed" and job.completed_count == 12
    assert sorted(m.to[0] for m in mail.outbox) == sorted(addresses(12))


def test_an_outcome_is_recorded_only_by_the_claim_holder(user, fast):
    job = JobFactory(owner=user, size=1)
    claim = deliveries_claim(job=job, limit=1)
    delivery = claim.deliveries[0]
    # The lease expired and recovery handed the row to someone else.
    Delivery.objects.filter(id=delivery.pk).update(claim_token=None, status=DeliveryStatus.UNKNOWN)

    deliveries_record(
        job=job, claim=claim, report=SendReport([Outcome(delivery, DeliveryStatus.SENT)])
    )

    assert Delivery.objects.get(id=delivery.pk).status == DeliveryStatus.UNKNOWN


def test_claims_never_overlap(user, fast):
    job = JobFactory(owner=user, size=7)
    first = deliveries_claim(job=job, limit=5)
    second = deliveries_claim(job=job, limit=5)
    third = deliveries_claim(job=job, limit=5)
    ids = [d.pk for claim in (first, second, third) for d in claim.deliveries]
    assert len(ids) == len(set(ids)) == 7
    assert Job.objects.get(id=job.id).total == 7


def test_a_jobs_lanes_share_one_pause_between_batches(user, fast, settings):
    configure(settings, EMAIL_BATCH_DELAY=1.0)
    job = JobFactory(owner=user, size=12)

    assert job_batch_send(job_id=job.id) == 1.0  # lane 0 sent a batch, then pauses
    wait = job_batch_send(job_id=job.id)  # lane 1 comes at once: the pause holds it back too

    assert 0.8 < wait <= 1.0
    assert len(mail.outbox) == 5


def test_the_batch_gate_is_moved_by_its_holder_and_only_pushed_by_others(user):
    gate = get_batch_gate()
    assert gate.enter("job", "a", hold=10) == 0
    assert 9 < gate.enter("job", "b", hold=10) <= 10
    gate.push("job", "a", 0.5)  # the holder's next send is sooner than its hold
    assert 0.3 < gate.enter("job", "b", hold=10) <= 0.5
    gate.push("job", "b", 0.1)  # someone else cannot open the gate early
    assert 0.3 < gate.enter("job", "b", hold=10) <= 0.5
    gate.open("job")
    assert gate.enter("job", "b", hold=10) == 0
