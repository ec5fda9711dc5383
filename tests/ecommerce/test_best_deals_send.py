"""The best-deals email sent now (fewer than 10 recipients) to a real SMTP server."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from ..factories import CustomerFactory, DealFactory
from ..helpers import BEST_DEALS_URL, NO_SPACING, parts


@pytest.fixture
def smtp_service(service, settings):
    service.configure(EMAIL_RATE_LIMIT=NO_SPACING, EMAIL_BATCH_DELAY=0)
    settings.PUBLIC_BASE_URL = "http://testserver"
    settings.SHOP_NAME = "Makola Online"
    return service


@pytest.fixture
def deals(db):
    """Three live deals (discounts 36%, 50%, 20%) and three that must not be sent."""
    now = timezone.now()
    live = [
        DealFactory(title="Kente stole", original_price=Decimal("1250"), deal_price=Decimal("800")),
        DealFactory(title="Shea butter", original_price=Decimal("50.00"), deal_price=Decimal("25")),
        DealFactory(title="Jollof kit", original_price=Decimal("65.00"), deal_price=Decimal("52")),
    ]
    DealFactory(title="Switched off", deal_price=Decimal("1.00"), is_active=False)
    DealFactory(title="Ended", starts_at=now - timedelta(days=9), ends_at=now - timedelta(days=1))
    DealFactory(title="Next week", starts_at=now + timedelta(days=7), ends_at=now + timedelta(9))
    return live


def test_each_customer_gets_their_name_and_the_deals_best_first(smtp_service, api, deals):
    ama = CustomerFactory(first_name="Ama", email="ama.mensah@example.com")
    kofi = CustomerFactory(first_name="Kofi", email="Kofi.Owusu@Example.com")

    response = api.post(BEST_DEALS_URL, {"customerIds": [ama.id, kofi.id]}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["success"] is True and body["queued"] is False
    assert (body["total"], body["sent"], body["failed"], body["rejected"]) == (2, 2, 0, [])
    received = smtp_service.smtp.by_recipient()
    assert set(received) == {"ama.mensah@example.com", "Kofi.Owusu@example.com"}
    assert smtp_service.smtp.duplicates() == {}
    for address, name in [("ama.mensah@example.com", "Ama"), ("Kofi.Owusu@example.com", "Kofi")]:
        message = received[address]
        assert message["Subject"] == "This week's best deals"
        for content_type, text in parts(message).items():
            assert f"Hi {name}," in text, content_type
            assert "Makola Online" in text
            positions = [text.index(t) for t in ("Shea butter", "Kente stole", "Jollof kit")]
            assert positions == sorted(positions), (content_type, text)
            for price in ("GHS 800.00", "GHS 1,250.00", "GHS 25.00", "GHS 65.00", "GHS 52.00"):
                assert price in text, (content_type, price)
            assert "50%" in text and "36%" in text and "20%" in text
            for hidden in ("Switched off", "Ended", "Next week"):
                assert hidden not in text
    assert "Hi Kofi" not in parts(received["ama.mensah@example.com"])["text/plain"]
    assert "this week's best deals" in parts(received["ama.mensah@example.com"])["text/plain"]


def test_list_unsubscribe_headers_point_at_the_customers_link(smtp_service, api, deals):
    ama = CustomerFactory(first_name="Ama")

    assert api.post(BEST_DEALS_URL, {"customerIds": [ama.id]}, format="json").status_code == 200

    message = smtp_service.smtp.messages()[0]
    header = "".join(message["List-Unsubscribe"].split())
    assert header.startswith("<http://testserver/api/ecommerce/unsubscribe/")
    assert header.endswith("/>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert header[1:-1] in parts(message)["text/plain"]
    assert header[1:-1] in parts(message)["text/html"]


def test_skipped_customers_are_rejected_with_their_reasons(smtp_service, api, deals):
    ama = CustomerFactory(first_name="Ama", email="ama@example.com")
    opted_out = CustomerFactory(email_opt_out_at=timezone.now(), email_opt_out_source="admin")
    inactive = CustomerFactory(is_active=False)
    no_email = CustomerFactory(email="")
    twin = CustomerFactory(email="AMA@example.com")  # same address as Ama
    payload = {
        "customerIds": [ama.id, opted_out.id, inactive.id, no_email.id, twin.id, 999999, ama.id],
        "manualEmails": ["someone@example.com", "not-an-email", "Ama@Example.com", "  "],
    }

    response = api.post(BEST_DEALS_URL, payload, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["total"] == 2 and body["sent"] == 2
    assert [r["recipient"] for r in body["results"]] == ["ama@example.com", "someone@example.com"]
    reasons = {r["recipient"]: r["reason"] for r in body["rejected"]}
    assert reasons[opted_out.id] == "customer opted out of email"
    assert reasons[inactive.id] == "inactive customer"
    assert reasons[no_email.id] == "customer has no email address"
    assert reasons[999999] == "unknown customer id"
    assert reasons[twin.id] == f"same email address as customer {ama.id}"
    assert "not-an-email" in reasons and "  " in reasons
    assert len(body["rejected"]) == 7
    received = smtp_service.smtp.by_recipient()
    assert set(received) == {"ama@example.com", "someone@example.com"}
    stranger = received["someone@example.com"]
    assert all("Hi there," in text for text in parts(stranger).values())
    assert stranger["List-Unsubscribe"] is None
    assert "Unsubscribe" not in parts(stranger)["text/plain"]
    assert "Hi Ama," in parts(received["ama@example.com"])["text/plain"]


def test_a_manual_email_of_an_opted_out_customer_is_not_sent(smtp_service, api, deals):
    CustomerFactory(email="gone@example.com", email_opt_out_at=timezone.now())

    response = api.post(
        BEST_DEALS_URL, {"manualEmails": ["gone@example.com", "new@example.com"]}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["rejected"] == [
        {"recipient": "gone@example.com", "reason": "customer opted out of email"}
    ]
    assert smtp_service.smtp.recipients() == ["new@example.com"]


def test_nobody_to_send_to_is_a_400_listing_who_was_skipped(api, deals):
    inactive = CustomerFactory(is_active=False)

    response = api.post(BEST_DEALS_URL, {"customerIds": [inactive.id, 424242]}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False and body["error"] == "No valid recipients."
    assert [r["recipient"] for r in body["details"]["rejected"]] == [inactive.id, 424242]


def test_no_active_deal_is_a_409(api, db):
    DealFactory(is_active=False)
    customer = CustomerFactory()

    response = api.post(BEST_DEALS_URL, {"customerIds": [customer.id]}, format="json")

    assert response.status_code == 409
    assert response.json()["success"] is False


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"customerIds": [], "sendToAll": False, "manualEmails": []},
        {"customerIds": "1,2"},
        {"customerIds": ["one"]},
        {"customerIds": [True]},
        {"customerIds": [-3]},
        {"customerIds": [{"id": 1}]},
        {"sendToAll": "perhaps"},
        {"manualEmails": "a@example.com"},
        {"manualEmails": [None]},
        [1, 2, 3],
        "everyone",
    ],
)
def test_bad_input_is_a_json_400(api, deals, payload):
    response = api.post(BEST_DEALS_URL, payload, format="json")

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["success"] is False and body["error"] and "details" in body


def test_malformed_json_is_a_json_400(api, deals):
    response = api.post(BEST_DEALS_URL, '{"customerIds": [1,', content_type="application/json")

    assert response.status_code == 400
    assert response.json()["success"] is False


def test_anonymous_requests_are_refused(db, deals):
    customer = CustomerFactory()

    response = APIClient().post(BEST_DEALS_URL, {"customerIds": [customer.id]}, format="json")

    assert response.status_code in (401, 403)
    assert response.json()["success"] is False
