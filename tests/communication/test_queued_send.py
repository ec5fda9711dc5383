"""The queued path end to end: API → real worker processes → real SMTP / HTTP providers."""

import pytest

from communication.models import Delivery, Job

from ..helpers import addresses, final_progress, parts, send_email, send_sms

pytestmark = pytest.mark.slow


def test_bulk_email_is_queued_and_sent_once_each(service, api):
    service.configure(EMAIL_RATE_LIMIT="100/s", EMAIL_BATCH_DELAY=0.1)
    service.start_worker(concurrency=2)
    recipients = addresses(25)

    body = send_email(api, recipients, message="<p>Hello <b>there</b></p>", bulk=False)

    assert body["queued"] is True and body["total"] == 25 and body["rejected"] == []
    final = final_progress(api, "email", body["jobId"])
    assert final["status"] == "completed" and final["completed"] == 25
    assert final["progress"] == 100
    assert sorted(service.smtp.recipients()) == sorted(recipients)
    assert service.smtp.duplicates() == {}
    message = service.smtp.messages()[0]
    assert message["Subject"] == "Deals"
    assert message["Message-ID"].startswith(f"<{body['jobId'].replace('-', '')}.")
    text = parts(message)
    assert "Hello there" in text["text/plain"] and "<b>there</b>" in text["text/html"]


def test_bulk_sms_retries_transient_and_fails_permanent(service, api):
    service.configure(SMS_RATE_LIMIT="100/s", SMS_BATCH_DELAY=0, RETRY_BACKOFF=0.2)
    service.sms.failures.add("+233241000001", 503, times=2)
    service.sms.failures.add("+233241000002", 429, times=1)
    service.sms.failures.add("+233241000003", 400)
    service.sms.failures.add("+233241000004", 503)  # never recovers: 4 attempts, then failed
    service.start_worker()
    numbers = [f"024100000{i}" for i in range(10)] + ["+233241000010", "024100000 1"]

    body = send_sms(api, numbers, message="Sale today")

    job_id = body["jobId"]
    assert body["total"] == 11  # the spaced duplicate collapsed
    final = final_progress(api, "sms", job_id)
    assert final["status"] == "completed_with_errors"
    assert (final["completed"], final["failed"]) == (9, 2)
    sent = service.sms.counts()
    assert all(count == 1 for count in sent.values())
    assert "+233241000001" in sent and "+233241000002" in sent
    assert service.sms.attempts["+233241000001"] == 3
    assert service.sms.attempts["+233241000003"] == 1
    assert service.sms.attempts["+233241000004"] == 4
    failed = api.get(f"/api/communication/jobs/{job_id}/recipients/", {"status": "failed"}).json()
    assert {row["recipient"]: row["attempts"] for row in failed["results"]} == {
        "+233241000003": 1,
        "+233241000004": 4,
    }
    assert Job.objects.get(id=job_id).failed_count == 2
    assert not Delivery.objects.filter(job_id=job_id, status="sending").exists()
