"""A channel paused by its circuit breaker shows on the jobs dashboard."""

import pytest

from communication.stores import get_circuit_breaker

from .factories import AdminFactory, SmsJobFactory

pytestmark = pytest.mark.django_db


def test_the_job_list_shows_a_paused_channel(client, settings):
    admin = AdminFactory(username="boss")
    client.force_login(admin)
    SmsJobFactory(owner=admin, size=1)
    breaker = get_circuit_breaker("sms", "locmem")
    breaker.threshold = 1
    breaker.record_failure("webhook: HTTP 503")

    page = client.get("/admin/communication/job/").content.decode()

    assert "Channel paused until" in page and "HTTP 503" in page
