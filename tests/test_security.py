"""Who may see what, throttling, request size limits and the production settings."""

import json
import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from rest_framework.throttling import ScopedRateThrottle

from communication.models import Delivery, DeliveryStatus, Job
from communication.services.jobs import job_create

from .conftest import token_client

ROOT = Path(__file__).resolve().parent.parent
EMAIL = "/api/communication/email/send"


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["success"] is False and isinstance(body["error"], str) and body["error"]
    assert isinstance(body["details"], dict)
    return body


@pytest.fixture
def job(user):
    job = job_create(
        owner=user, channel="email", recipients=["a@example.com", "b@example.com"], message="Hi"
    )
    Delivery.objects.filter(job=job, recipient="b@example.com").update(status=DeliveryStatus.FAILED)
    return job


# --- Ownership ------------------------------------------------------------------------------


def job_urls(job: Job) -> list[tuple[str, str, dict]]:
    return [
        ("get", "/api/communication/email/progress", {"jobId": str(job.id)}),
        ("get", f"/api/communication/jobs/{job.id}/", {}),
        ("get", f"/api/communication/jobs/{job.id}/recipients/", {}),
        ("post", f"/api/communication/jobs/{job.id}/cancel/", {}),
        ("post", f"/api/communication/jobs/{job.id}/retry-failed/", {}),
    ]


def test_another_user_can_neither_read_cancel_nor_retry_a_job(job, other_user):
    intruder = token_client(other_user)
    for method, url, params in job_urls(job):
        response = getattr(intruder, method)(
            url, params, format="json" if method == "post" else None
        )
        assert_error(response, 404)
    assert intruder.get("/api/communication/jobs/").json()["count"] == 0
    job.refresh_from_db()
    assert job.status == "queued"
    assert Delivery.objects.filter(job=job, status=DeliveryStatus.FAILED).count() == 1


def test_the_owner_and_staff_can_read_it(job, api, db):
    staff = get_user_model().objects.create_user("admin", "admin@example.com", "pw", is_staff=True)
    for client in (api, token_client(staff)):
        assert client.get(f"/api/communication/jobs/{job.id}/").status_code == 200
        progress = client.get("/api/communication/email/progress", {"jobId": str(job.id)})
        assert progress.status_code == 200 and progress.json()["total"] == 2
        assert client.get("/api/communication/jobs/").json()["count"] == 1


def test_malformed_and_wrong_channel_ids_are_404(job, api):
    assert_error(api.get("/api/communication/sms/progress", {"jobId": str(job.id)}), 404)
    assert_error(api.get("/api/communication/jobs/not-a-uuid/"), 404)


def test_no_credentials_is_a_json_401(db, client):
    assert_error(client.post(EMAIL, {}, content_type="application/json"), 401)
    bad = {"HTTP_AUTHORIZATION": "Token nope"}
    assert_error(client.get("/api/communication/jobs/", **bad), 401)


# --- Throttling -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def redis_cache(settings, redis_server):
    """The throttle's cache in the test's private Redis (flushed per test), as in production."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_server.url,
            "KEY_PREFIX": "cache",
        }
    }


def test_send_endpoints_are_throttled_per_user_with_a_json_429(
    redis_server, monkeypatch, api, other_user
):
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "send", "3/min")
    for _ in range(2):
        assert_error(api.post(EMAIL, {"recipients": []}, format="json"), 400)
    assert_error(api.post("/api/communication/sms/send", {}, format="json"), 400)

    throttled = api.post(EMAIL, {"recipients": ["a@example.com"]}, format="json")

    body = assert_error(throttled, 429)
    assert "throttled" in body["error"].lower()
    assert 0 < int(throttled["Retry-After"]) <= 60
    # The window lives in Redis, so every web process sees it.
    assert redis_server.client().keys("cache:*throttle_send*")
    # Another user has a window of their own; reads are not in the send scope.
    assert_error(token_client(other_user).post(EMAIL, {}, format="json"), 400)
    assert api.get("/api/communication/jobs/").status_code == 200


def test_the_send_rate_comes_from_the_environment():
    code = (
        "from django.conf import settings; print(settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'])"
    )
    output = run_django(code, SEND_THROTTLE_RATE="7/min").stdout
    assert "'send': '7/min'" in output


# --- Request size ---------------------------------------------------------------------------


def test_a_body_over_the_upload_limit_is_a_json_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    recipients = [f"user{i}@example.com" for i in range(200)]

    response = api.post(EMAIL, {"recipients": recipients, "subject": "s", "message": "m"}, "json")

    assert_error(response, 413)
    assert Job.objects.count() == 0


def test_more_recipients_than_allowed_is_a_json_400(api, settings):
    settings.COMMUNICATION = {**settings.COMMUNICATION, "MAX_RECIPIENTS_PER_REQUEST": 5}
    recipients = [f"user{i}@example.com" for i in range(6)]

    response = api.post(EMAIL, {"recipients": recipients, "subject": "s", "message": "m"}, "json")

    body = assert_error(response, 400)
    assert body["details"] == {"recipients": 6, "limit": 5}


def test_the_upload_limit_fits_a_full_request(settings):
    """MAX_RECIPIENTS_PER_REQUEST long addresses must fit under DATA_UPLOAD_MAX_MEMORY_SIZE."""
    limit = settings.COMMUNICATION["MAX_RECIPIENTS_PER_REQUEST"]
    address = "firstname.lastname.{:06d}@subdomain.example-company.com"
    body = {"recipients": [address.format(i) for i in range(limit)], "subject": "s" * 200}
    body["message"] = "<p>" + "x" * 100_000 + "</p>"
    assert len(json.dumps(body)) < settings.DATA_UPLOAD_MAX_MEMORY_SIZE


# --- Production settings --------------------------------------------------------------------


def production_env(**extra: str) -> dict[str, str]:
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    return {
        "DJANGO_SETTINGS_MODULE": "messaging_site.settings",
        "DEBUG": "false",
        "SECRET_KEY": "".join(secrets.choice(alphabet) for _ in range(50)),
        "ALLOWED_HOSTS": "example.com",
        "PRODUCTION": "true",
        "MESSAGING_EMBEDDED": "false",
        **extra,
    }


def run_django(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "messaging_site.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "extra", [{}, {"PRODUCTION": "false", "SECURE_SSL_REDIRECT": "true"}], ids=["PRODUCTION", "SSL"]
)
def test_check_deploy_is_clean_in_production(extra):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(**extra))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = {**os.environ, **production_env()}
    del env["SECRET_KEY"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "Set SECRET_KEY" in result.stderr


def test_local_development_stays_on_plain_http(settings):
    assert not settings.SECURE_SSL_REDIRECT
    assert settings.SECURE_HSTS_SECONDS == 0
    assert not settings.SESSION_COOKIE_SECURE and not settings.CSRF_COOKIE_SECURE
