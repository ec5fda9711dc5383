"""`Idempotency-Key` on the send endpoints: a repeated request is answered, not sent again."""

import threading

import pytest

from communication.idempotency import DEFAULT_TTL
from communication.models import Job

from .conftest import token_client
from .servers import wait_until
from .test_security import redis_cache  # noqa: F401  (throttle cache in the private Redis)

EMAIL = "/api/communication/email/send"
SMS = "/api/communication/sms/send"
FINAL = ("completed", "completed_with_errors", "failed", "cancelled")


@pytest.fixture(autouse=True)
def window_rate_limits(service):
    """A per-hour quota rather than per-second spacing: synchronous sends then never miss their
    slot while the connection opens (that path is tested elsewhere; here only repeats matter)."""
    service.configure(EMAIL_RATE_LIMIT="100000/h", SMS_RATE_LIMIT="100000/h")


def email(recipients: list[str], **extra) -> dict:
    return {"recipients": recipients, "subject": "Hello", "message": "<p>Hi</p>", **extra}


def send(client, body: dict, key: str | None = "order-42", path: str = EMAIL):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(path, body, format="json", **headers)


def test_a_repeated_synchronous_send_returns_the_first_answer(service, api):
    body = email(["a@example.com", "b@example.com"])

    first = send(api, body)
    second = send(api, body)

    assert first.status_code == second.status_code == 200, first.json()
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Job.objects.count() == 1
    assert sorted(service.smtp.recipients()) == ["a@example.com", "b@example.com"]


@pytest.mark.slow
def test_a_repeated_queued_send_makes_one_job_sent_once(service, api):
    service.configure(EMAIL_BATCH_DELAY=0.1)
    service.start_worker()
    recipients = [f"user{i}@example.com" for i in range(12)]

    first = send(api, email(recipients))
    second = send(api, email(recipients))

    assert first.status_code == second.status_code == 202, first.json()
    assert second.json()["jobId"] == first.json()["jobId"]
    assert second["Idempotent-Replayed"] == "true"
    job = Job.objects.get()
    wait_until(lambda: Job.objects.get(id=job.id).status in FINAL, 60, 0.2, "the job to finish")
    assert Job.objects.get(id=job.id).status == "completed"
    assert sorted(service.smtp.recipients()) == sorted(recipients)
    assert service.smtp.duplicates() == {}
    assert send(api, email(recipients)).json()["jobId"] == str(job.id)  # still after the job


def test_different_users_with_the_same_key_are_independent(service, api, other_user):
    first = send(api, email(["a@example.com"]))
    second = send(token_client(other_user), email(["a@example.com"]))

    assert first.status_code == second.status_code == 200
    assert first.json()["jobId"] != second.json()["jobId"]
    assert "Idempotent-Replayed" not in second
    assert Job.objects.count() == 2
    assert service.smtp.recipients() == ["a@example.com", "a@example.com"]


def test_no_key_means_no_deduplication(service, api):
    send(api, email(["a@example.com"]), key=None)
    send(api, email(["a@example.com"]), key=None)

    assert Job.objects.count() == 2


def test_the_same_key_with_another_body_is_422(service, api):
    assert send(api, email(["a@example.com"])).status_code == 200

    response = send(api, email(["b@example.com"]))

    assert response.status_code == 422
    assert response.json()["success"] is False and "different request" in response.json()["error"]
    assert send(api, {"recipients": ["+233241000001"], "message": "x"}, path=SMS).status_code == 422
    assert service.smtp.recipients() == ["a@example.com"]


def test_a_repeat_while_the_first_is_running_is_409(service, api, redis_server):
    service.sms.delay = 1.5  # the provider is slow: the first request is still sending
    body = {"recipients": ["+233241000001"], "message": "Sale today"}
    answers = {}
    first = threading.Thread(target=lambda: answers.update(first=send(api, body, path=SMS)))
    first.start()
    redis = redis_server.client()
    wait_until(lambda: redis.keys("idempotency:*"), 5, what="the pending marker")

    concurrent = send(api, body, path=SMS)
    first.join()

    assert concurrent.status_code == 409, concurrent.json()
    assert concurrent.json()["success"] is False
    assert answers["first"].status_code == 200
    replay = send(api, body, path=SMS)
    assert replay.status_code == 200 and replay.json() == answers["first"].json()
    assert service.sms.recipients() == ["+233241000001"]


def test_a_refused_request_is_not_stored(service, api):
    assert send(api, email([])).status_code == 400

    fixed = send(api, email(["a@example.com"]))

    assert fixed.status_code == 200 and "Idempotent-Replayed" not in fixed


def test_answers_are_kept_at_least_a_day(service, api, redis_server):
    send(api, email(["a@example.com"]))

    (key,) = redis_server.client().keys("idempotency:*")
    assert redis_server.client().ttl(key) > DEFAULT_TTL - 60


@pytest.mark.parametrize("key", ["", "x" * 256])
def test_a_malformed_key_is_400(service, api, key):
    response = send(api, email(["a@example.com"]), key=key)

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]
    assert Job.objects.count() == 0
