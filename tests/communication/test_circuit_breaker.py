"""Consecutive transient failures pause the channel instead of burning everyone's retries."""

import time

import pytest

from communication.models import Delivery
from communication.services.batches import job_batch_send
from communication.services.jobs import job_create

from ..servers import Failures

pytestmark = pytest.mark.django_db

NUMBERS = [f"+23324100{i:04d}" for i in range(10)]


@pytest.fixture
def failing_provider(settings, sms_provider):
    settings.COMMUNICATION = {
        **settings.COMMUNICATION,
        "SMS_BACKEND": "webhook",
        "SMS_WEBHOOK_URL": sms_provider.url,
        "SMS_RATE_LIMIT": "100/s",
        "SMS_BATCH_DELAY": 0,  # the waits asserted are the breaker's, not the batch pause
        "CIRCUIT_BREAKER_THRESHOLD": 3,
        "CIRCUIT_BREAKER_COOLDOWN": 1.5,
        "RETRY_BACKOFF": 0.1,
    }
    for number in NUMBERS:
        sms_provider.failures.add(number, 503)
    return sms_provider


def run_until_done(job_id, deadline: float = 20.0) -> None:
    stop = time.monotonic() + deadline
    while (wait := job_batch_send(job_id=job_id)) is not None:
        assert time.monotonic() < stop, "the job did not finish"
        time.sleep(wait)


def test_the_breaker_opens_pauses_and_the_job_resumes(failing_provider, api, user):
    job = job_create(owner=user, channel="sms", recipients=NUMBERS, message="Hi")

    wait = job_batch_send(job_id=job.id)

    assert wait == 1.5 and sum(failing_provider.attempts.values()) == 3
    states = sorted(Delivery.objects.filter(job=job).values_list("status", "attempts"))
    assert states == [("pending", 0)] * 7 + [("retry", 1)] * 3  # the rest kept their retries
    progress = api.get("/api/communication/sms/progress", {"jobId": str(job.id)}).json()
    assert progress["pausedUntil"] and "3 consecutive failures" in progress["pauseReason"]
    assert job_batch_send(job_id=job.id) == pytest.approx(1.5, abs=0.1)  # paused: nothing sent
    assert sum(failing_provider.attempts.values()) == 3

    failing_provider.failures = Failures()  # the provider is back
    run_until_done(job.id)

    job.refresh_from_db()
    assert job.status == "completed" and job.completed_count == 10
    assert failing_provider.counts() == {number: 1 for number in NUMBERS}


def test_connection_refused_is_a_transient_failure(settings, user):
    settings.COMMUNICATION = {
        **settings.COMMUNICATION,
        "SMS_BACKEND": "webhook",
        "SMS_WEBHOOK_URL": "http://127.0.0.1:9/sms",  # nothing listens on the discard port
        "SMS_RATE_LIMIT": "100/s",
        "CIRCUIT_BREAKER_THRESHOLD": 100,
    }
    job = job_create(owner=user, channel="sms", recipients=NUMBERS[:2], message="Hi")
    job_batch_send(job_id=job.id)
    states = sorted(Delivery.objects.filter(job=job).values_list("status", "attempts"))
    assert states == [("retry", 1), ("retry", 1)]
