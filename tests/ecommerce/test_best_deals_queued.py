"""`sendToAll` over 30 customers: queued (202), sent by a real worker to a real SMTP server."""

import pytest
from django.utils import timezone

from ..factories import CustomerFactory, DealFactory
from ..helpers import BEST_DEALS_URL, final_progress, parts

pytestmark = pytest.mark.slow


def test_send_to_all_goes_through_the_queue_once_per_customer(service, api, settings):
    service.configure(EMAIL_RATE_LIMIT="100/s", EMAIL_BATCH_DELAY=0.1)
    settings.PUBLIC_BASE_URL = "http://testserver"
    DealFactory(title="Solar lantern")
    customers = CustomerFactory.create_batch(30)
    opted_out = CustomerFactory(email_opt_out_at=timezone.now())
    inactive = CustomerFactory(is_active=False)
    worker = service.start_worker(concurrency=2)

    response = api.post(
        BEST_DEALS_URL, {"sendToAll": True, "customerIds": [inactive.id]}, format="json"
    )

    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["queued"] is True and body["total"] == 30
    assert body["progressUrl"] == f"/api/communication/email/progress?jobId={body['jobId']}"
    assert {r["recipient"]: r["reason"] for r in body["rejected"]} == {
        opted_out.id: "customer opted out of email",
        inactive.id: "inactive customer",
    }
    try:
        final = final_progress(api, "email", body["jobId"], timeout=30.0)
    except AssertionError as err:
        raise AssertionError(f"{err}\nworker log:\n{worker.output()[-4000:]}") from err
    assert final["status"] == "completed" and final["completed"] == 30, final
    assert service.smtp.duplicates() == {}
    assert sorted(service.smtp.recipients()) == sorted(c.email for c in customers)
    received = service.smtp.by_recipient()
    for customer in customers[:3]:
        message = received[customer.email]
        assert f"Hi {customer.first_name}," in parts(message)["text/plain"]
        assert "Solar lantern" in parts(message)["text/html"]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        header = "".join(message["List-Unsubscribe"].split())  # unfold the long header
        assert header.startswith("<http://testserver/api/ecommerce/unsubscribe/")
