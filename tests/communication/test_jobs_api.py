"""Progress, job list, detail and recipients: visibility and consistency."""

import uuid

import pytest
from django.contrib.auth import get_user_model

from communication.models import Delivery, DeliveryStatus
from communication.services.jobs import job_create, job_dispatch
from communication.stores import get_progress_store

from ..conftest import token_client

pytestmark = pytest.mark.django_db

PROGRESS = "/api/communication/email/progress"


def make_job(owner, channel="email", n=3, **kwargs):
    recipients = [
        f"r{i}@example.com" if channel == "email" else f"+23324100{i:04d}" for i in range(n)
    ]
    return job_create(
        owner=owner,
        channel=channel,
        recipients=recipients,
        message="<p>x</p>",
        subject="S",
        **kwargs,
    )


class TestProgress:
    def test_fresh_job(self, api, user):
        job = make_job(user)
        body = api.get(PROGRESS, {"jobId": str(job.id)}).json()
        assert body["status"] == "queued" and body["jobId"] == str(job.id)
        assert (body["total"], body["pending"], body["progress"]) == (3, 3, 0)
        assert body["startedAt"] is None and body["finishedAt"] is None

    def test_missing_job_id_is_400(self, api):
        response = api.get(PROGRESS)
        assert response.status_code == 400 and "jobId" in response.json()["error"]

    @pytest.mark.parametrize("job_id", ["not-a-uuid", str(uuid.uuid4()), "1' OR '1'='1"])
    def test_unknown_or_malformed_id_is_404(self, api, job_id):
        response = api.get(PROGRESS, {"jobId": job_id})
        assert response.status_code == 404 and response.json()["success"] is False

    def test_another_users_job_is_404(self, api, other_user):
        job = make_job(other_user)
        assert api.get(PROGRESS, {"jobId": str(job.id)}).status_code == 404
        assert api.get(f"/api/communication/jobs/{job.id}/").status_code == 404
        assert api.post(f"/api/communication/jobs/{job.id}/cancel/").status_code == 404

    def test_staff_read_every_job(self, other_user):
        staff = get_user_model().objects.create_user("boss", is_staff=True)
        job = make_job(other_user)
        assert token_client(staff).get(PROGRESS, {"jobId": str(job.id)}).status_code == 200

    def test_sms_job_on_the_email_endpoint_is_404(self, api, user):
        job = make_job(user, channel="sms")
        assert api.get(PROGRESS, {"jobId": str(job.id)}).status_code == 404
        sms = api.get("/api/communication/sms/progress", {"jobId": str(job.id)})
        assert sms.status_code == 200 and sms.json()["channel"] == "sms"

    def test_live_counters_and_database_agree(self, api, user):
        job = make_job(user, n=4)
        job_dispatch(job=job)  # seeds the counters in Redis (the lanes' tasks wait in the broker)
        Delivery.objects.filter(job=job, recipient="r0@example.com").update(
            status=DeliveryStatus.SENT
        )
        get_progress_store().move(job.id, {"pending": -1, "completed": 1})
        live = api.get(PROGRESS, {"jobId": str(job.id)}).json()
        get_progress_store().delete(job.id)  # Redis lost the counters: the rows answer
        counted = api.get(PROGRESS, {"jobId": str(job.id)}).json()
        for body in (live, counted):
            assert (body["completed"], body["pending"], body["progress"]) == (1, 3, 25.0)


class TestJobList:
    def test_own_jobs_newest_first_with_filters(self, api, user, other_user):
        first = make_job(user)
        second = make_job(user, channel="sms")
        make_job(other_user)
        body = api.get("/api/communication/jobs/").json()
        assert [j["jobId"] for j in body["results"]] == [str(second.id), str(first.id)]
        assert body["count"] == 2
        sms = api.get("/api/communication/jobs/", {"channel": "sms"}).json()
        assert [j["jobId"] for j in sms["results"]] == [str(second.id)]
        assert api.get("/api/communication/jobs/", {"status": "completed"}).json()["count"] == 0
        assert api.get("/api/communication/jobs/", {"status": "bogus"}).status_code == 400

    def test_detail_and_recipients(self, api, user):
        job = make_job(user, n=2)
        Delivery.objects.filter(job=job, recipient="r1@example.com").update(
            status=DeliveryStatus.FAILED, attempts=4, last_error="SMTP 550: No such user"
        )
        detail = api.get(f"/api/communication/jobs/{job.id}/").json()
        assert detail["total"] == 2 and detail["failed"] == 1 and detail["subject"] == "S"
        failed = api.get(
            f"/api/communication/jobs/{job.id}/recipients/", {"status": "failed"}
        ).json()
        assert failed["results"] == [
            {
                **failed["results"][0],
                "recipient": "r1@example.com",
                "status": "failed",
                "attempts": 4,
                "lastError": "SMTP 550: No such user",
            }
        ]
