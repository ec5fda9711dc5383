"""A channel paused by its circuit breaker shows on the jobs dashboard."""

import pytest
from django.contrib.auth import get_user_model

from communication.services.jobs import job_create
from communication.stores import get_circuit_breaker

pytestmark = pytest.mark.django_db


def test_the_job_list_shows_a_paused_channel(client, settings):
    admin = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client.force_login(admin)
    job_create(owner=admin, channel="sms", recipients=["+233241000001"], message="Hi")
    breaker = get_circuit_breaker("sms", "locmem")
    breaker.threshold = 1
    breaker.record_failure("webhook: HTTP 503")

    page = client.get("/admin/communication/job/").content.decode()

    assert "Channel paused until" in page and "HTTP 503" in page
