"""The send endpoints: validation, the synchronous path, and what a provider received."""

import pytest
from django.core import mail

from communication.backends.sms import locmem
from communication.models import Delivery, Job

from ..servers import wait_until

EMAIL_URL = "/api/communication/email/send"
SMS_URL = "/api/communication/sms/send"


def email_request(**overrides):
    body = {"recipients": ["ama@example.com"], "subject": "Hello", "message": "<p>Hi</p>"}
    return {**body, **overrides}


def assert_error(response, status: int, fragment: str = "") -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False and isinstance(body["details"], dict)
    assert fragment.lower() in body["error"].lower(), body


@pytest.mark.django_db
class TestEmailSendValidation:
    @pytest.mark.parametrize(
        ("payload", "fragment"),
        [
            ({"subject": "Hi", "message": "<p>x</p>"}, "recipients"),
            (email_request(recipients=[]), "recipients"),
            (email_request(recipients="ama@example.com"), "recipients"),
            (email_request(recipients=[{"a": 1}]), "recipients"),
            (email_request(subject=None), "subject"),
            (email_request(message=""), "message"),
            (email_request(subject="Hi\r\nBcc: victim@example.com"), "line breaks"),
            (email_request(isBulk="maybe"), "isBulk"),
            ([1, 2, 3], "dictionary"),
        ],
    )
    def test_bad_input_is_a_json_400_that_creates_nothing(self, api, payload, fragment):
        assert_error(api.post(EMAIL_URL, payload, format="json"), 400, fragment)
        assert not Job.objects.exists() and not mail.outbox

    def test_malformed_json(self, api):
        response = api.post(EMAIL_URL, '{"recipients": [', content_type="application/json")
        assert_error(response, 400, "JSON parse error")
        assert not Job.objects.exists()

    def test_no_valid_recipient(self, api):
        response = api.post(EMAIL_URL, email_request(recipients=["nope", "a@"]), format="json")
        assert_error(response, 400, "No valid recipients")
        rejected = response.json()["details"]["rejected"]
        assert [r["recipient"] for r in rejected] == ["nope", "a@"] and rejected[0]["reason"]

    def test_too_many_recipients(self, api, settings):
        settings.COMMUNICATION = {**settings.COMMUNICATION, "MAX_RECIPIENTS_PER_REQUEST": 3}
        recipients = [f"u{i}@example.com" for i in range(4)]
        response = api.post(EMAIL_URL, email_request(recipients=recipients), format="json")
        assert_error(response, 400, "Too many recipients")
        assert not Job.objects.exists()

    def test_oversize_body(self, api, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
        response = api.post(EMAIL_URL, email_request(message="x" * 2000), format="json")
        assert_error(response, 413, "too large")
        assert not Job.objects.exists()

    def test_authentication_is_required(self, client):
        response = client.post(EMAIL_URL, email_request(), content_type="application/json")
        assert response.status_code in (401, 403)
        assert response.json()["success"] is False

    def test_form_encoded_body_is_refused(self, api):
        response = api.post(EMAIL_URL, {"recipients": "a@example.com"})
        assert_error(response, 415)


@pytest.mark.django_db
class TestSynchronousEmail:
    def test_small_send_goes_out_within_the_request(self, api):
        response = api.post(
            EMAIL_URL,
            email_request(
                recipients=["Ama@Example.com", "ama@example.com", "kofi@example.com", "bad@"],
                message="<h1>Deals</h1><p>Half price</p>",
            ),
            format="json",
        )
        assert response.status_code == 200, response.json()
        body = response.json()
        assert body["success"] is True and body["queued"] is False
        assert (body["total"], body["sent"], body["failed"]) == (2, 2, 0)
        assert [r["status"] for r in body["results"]] == ["sent", "sent"]
        assert body["rejected"][0]["recipient"] == "bad@"
        assert sorted(m.to[0] for m in mail.outbox) == ["Ama@example.com", "kofi@example.com"]
        message = mail.outbox[0]
        assert "Half price" in message.body and message.alternatives[0].mimetype == "text/html"
        job = Job.objects.get(id=body["jobId"])
        assert job.status == "completed" and job.completed_count == 2 and not job.queued

    def test_is_bulk_forces_the_queue(self, api):
        response = api.post(EMAIL_URL, email_request(isBulk=True), format="json")
        assert response.status_code == 202
        body = response.json()
        assert body["queued"] is True
        assert body["progressUrl"] == f"/api/communication/email/progress?jobId={body['jobId']}"
        assert not mail.outbox

    def test_threshold_queues_ten_recipients(self, api):
        recipients = [f"u{i}@example.com" for i in range(10)]
        response = api.post(EMAIL_URL, email_request(recipients=recipients), format="json")
        assert response.status_code == 202
        assert Delivery.objects.filter(job_id=response.json()["jobId"]).count() == 10

    def test_a_saturated_rate_limit_queues_instead(self, api, settings):
        settings.COMMUNICATION = {
            **settings.COMMUNICATION,
            "EMAIL_RATE_LIMIT": "1/m",
            "SYNC_SEND_WAIT": 0.5,
        }
        first = api.post(EMAIL_URL, email_request(), format="json")
        second = api.post(EMAIL_URL, email_request(), format="json")
        assert first.status_code == 200 and second.status_code == 202
        assert len(mail.outbox) == 1


@pytest.mark.django_db
class TestSynchronousSms:
    def test_numbers_are_normalised_and_deduplicated(self, api):
        response = api.post(
            SMS_URL,
            {
                "recipients": ["+233123456789", "0241234567", "+233 24 123 4567", "12"],
                "message": "Hi",
            },
            format="json",
        )
        assert response.status_code == 200, response.json()
        body = response.json()
        assert body["total"] == 2 and body["sent"] == 2
        assert sorted(m.to for m in locmem.outbox) == ["+233123456789", "+233241234567"]
        assert locmem.outbox[0].body == "Hi" and locmem.outbox[0].from_ == "Messaging"
        assert body["rejected"] == [
            {"recipient": "12", "reason": "not a possible phone number for its region"}
        ]

    def test_message_length_is_limited(self, api):
        response = api.post(
            SMS_URL, {"recipients": ["0241234567"], "message": "x" * 1601}, format="json"
        )
        assert_error(response, 400, "message")

    def test_default_region_applies_to_national_numbers(self, api, settings):
        settings.COMMUNICATION = {**settings.COMMUNICATION, "DEFAULT_PHONE_REGION": "GB"}
        response = api.post(
            SMS_URL, {"recipients": ["07911 123456"], "message": "Hi"}, format="json"
        )
        assert response.status_code == 200
        assert locmem.outbox[0].to == "+447911123456"


@pytest.mark.slow
def test_sync_send_reports_provider_failures_and_queues_retries(service, api):
    service.configure(RETRY_BACKOFF=0.2)
    service.smtp.failures.add("gone@example.com", 550)
    service.smtp.failures.add("busy@example.com", 451, times=1)
    response = api.post(
        EMAIL_URL,
        email_request(recipients=["ok@example.com", "gone@example.com", "busy@example.com"]),
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    statuses = {r["recipient"]: r["status"] for r in body["results"]}
    assert statuses == {
        "ok@example.com": "sent",
        "gone@example.com": "failed",
        "busy@example.com": "retrying",
    }
    assert body["success"] is False and (body["sent"], body["failed"]) == (1, 1)
    assert "550" in next(
        r["error"] for r in body["results"] if r["recipient"] == "gone@example.com"
    )
    assert service.smtp.counts() == {"ok@example.com": 1}
    job = Job.objects.get(id=body["jobId"])
    assert job.status == "running" and job.queued  # the retry waits in the queue

    service.start_worker()
    wait_until(lambda: Job.objects.get(id=job.id).status != "running", 30, what="the retry")
    assert Job.objects.get(id=job.id).status == "completed_with_errors"
    assert service.smtp.counts() == {"ok@example.com": 1, "busy@example.com": 1}
