"""Consecutive transient failures pause the channel instead of burning everyone's retries."""

import pytest

from communication.models import Delivery
from communication.services.batches import job_batch_send

from ..factories import SmsJobFactory
from ..helpers import ProgressPoller, configure, numbers, run_until_done

pytestmark = pytest.mark.django_db

NUMBERS = numbers(10)


@pytest.fixture
def failing_provider(settings, sms_provider):
    configure(
        settings,
        SMS_BACKEND="webhook",
        SMS_WEBHOOK_URL=sms_provider.url,
        SMS_RATE_LIMIT="100/s",
        SMS_BATCH_DELAY=0,  # the waits asserted are the breaker's, not the batch pause
        CIRCUIT_BREAKER_THRESHOLD=3,
        CIRCUIT_BREAKER_COOLDOWN=1.5,
        RETRY_BACKOFF=0.1,
    )
    for number in NUMBERS:
        sms_provider.failures.add(number, 503)
    return sms_provider


def test_the_breaker_opens_pauses_and_the_job_resumes(failing_provider, api, user):
    job = SmsJobFactory(owner=user, recipients=NUMBERS)

    wait = job_batch_send(job_id=job.id)

    assert wait == 1.5 and sum(failing_provider.attempts.values()) == 3
    states = sorted(Delivery.objects.filter(job=job).values_list("status", "attempts"))
    assert states == [("pending", 0)] * 7 + [("retry", 1)] * 3  # the rest kept their retries
    progress = ProgressPoller(api, "sms", str(job.id)).poll()
    assert progress["pausedUntil"] and "3 consecutive failures" in progress["pauseReason"]
    assert job_batch_send(job_id=job.id) == pytest.approx(1.5, abs=0.1)  # paused: nothing sent
    assert sum(failing_provider.attempts.values()) == 3

    failing_provider.failures.clear()  # the provider is back
    run_until_done(job.id, deadline=20.0)

    job.refresh_from_db()
    assert job.status == "completed" and job.completed_count == 10
    assert failing_provider.counts() == {number: 1 for number in NUMBERS}


def test_connection_refused_is_a_transient_failure(settings, user):
    configure(
        settings,
        SMS_BACKEND="webhook",
        SMS_WEBHOOK_URL="http://127.0.0.1:9/sms",  # nothing listens on the discard port
        SMS_RATE_LIMIT="100/s",
        CIRCUIT_BREAKER_THRESHOLD=100,
    )
    job = SmsJobFactory(owner=user, size=2)
    job_batch_send(job_id=job.id)
    states = sorted(Delivery.objects.filter(job=job).values_list("status", "attempts"))
    assert states == [("retry", 1), ("retry", 1)]
