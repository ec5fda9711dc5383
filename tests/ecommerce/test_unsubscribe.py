"""The signed unsubscribe link of each email: confirm page, form POST, RFC 8058 one-click."""

import re
from email.message import Message

import pytest
from django.core import signing
from django.test import Client

from ecommerce.models import Customer
from ecommerce.unsubscribe import unsubscribe_url

from ..factories import CustomerFactory, DealFactory
from ..helpers import BEST_DEALS_URL, NO_SPACING, parts

ONE_CLICK = "List-Unsubscribe=One-Click"


def link_path(message: Message) -> str:
    """The path of the unsubscribe link in the plain-text part."""
    match = re.search(r"Unsubscribe: http://testserver(\S+)", parts(message)["text/plain"])
    assert match, parts(message)["text/plain"]
    return match.group(1)


@pytest.fixture
def sent(service, settings, api):
    """Ama and Kofi have received the best-deals email; returns (ama, kofi, ama's link path)."""
    service.configure(EMAIL_RATE_LIMIT=NO_SPACING, EMAIL_BATCH_DELAY=0)
    settings.PUBLIC_BASE_URL = "http://testserver/"
    DealFactory(title="Kente stole")
    ama = CustomerFactory(first_name="Ama", email="ama@example.com")
    kofi = CustomerFactory(first_name="Kofi", email="kofi@example.com")
    response = api.post(BEST_DEALS_URL, {"customerIds": [ama.id, kofi.id]}, format="json")
    assert response.status_code == 200 and response.json()["sent"] == 2, response.content
    return ama, kofi, link_path(service.smtp.by_recipient()["ama@example.com"])


def test_get_only_asks_for_confirmation(sent):
    ama, _, path = sent

    response = Client().get(path)

    assert response.status_code == 200
    assert b'<form method="post">' in response.content
    assert b"a**@example.com" in response.content
    ama.refresh_from_db()
    assert not ama.email_opted_out


def test_the_form_post_opts_out_and_the_next_send_skips_the_customer(sent, api, service):
    ama, kofi, path = sent

    response = Client(enforce_csrf_checks=True).post(path)

    assert response.status_code == 200 and b"You are unsubscribed" in response.content
    ama.refresh_from_db()
    assert ama.email_opted_out and ama.email_opt_out_source == "unsubscribe_link"
    assert b"You are unsubscribed" in Client().get(path).content
    service.smtp.received.clear()
    again = api.post(BEST_DEALS_URL, {"customerIds": [ama.id, kofi.id]}, format="json")
    assert again.status_code == 200
    assert again.json()["rejected"] == [
        {"recipient": ama.id, "reason": "customer opted out of email"}
    ]
    assert service.smtp.recipients() == ["kofi@example.com"]
    everyone = api.post(BEST_DEALS_URL, {"sendToAll": True}, format="json")
    assert everyone.json()["total"] == 1
    assert service.smtp.recipients() == ["kofi@example.com", "kofi@example.com"]


def test_rfc8058_one_click_post_needs_no_csrf_token_and_is_idempotent(sent):
    ama, kofi, path = sent
    client = Client(enforce_csrf_checks=True)

    first = client.post(path, ONE_CLICK, content_type="application/x-www-form-urlencoded")
    ama.refresh_from_db()
    opted_out_at = ama.email_opt_out_at
    second = client.post(path, ONE_CLICK, content_type="application/x-www-form-urlencoded")

    assert first.status_code == second.status_code == 200
    ama.refresh_from_db()
    assert ama.email_opt_out_at == opted_out_at is not None
    kofi.refresh_from_db()
    assert not kofi.email_opted_out


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),
        lambda token: signing.dumps({"c": 1}, salt="another.purpose"),
        lambda token: "not-a-token",
    ],
)
def test_a_tampered_link_is_refused(sent, tamper):
    *_, path = sent
    token = path.rstrip("/").rsplit("/", 1)[1]
    bad = path.replace(token, tamper(token))

    get, post = Client().get(bad), Client().post(bad, ONE_CLICK, content_type="text/plain")

    assert get.status_code == post.status_code == 400
    assert b"This link is not valid" in post.content
    assert not Customer.objects.filter(email_opt_out_at__isnull=False).exists()


def test_a_link_to_a_deleted_customer_shows_unsubscribed(db, settings):
    customer = CustomerFactory()
    path = unsubscribe_url(customer_id=customer.id).removeprefix("http://localhost:8000")
    customer.delete()

    response = Client().post(path)

    assert response.status_code == 200 and b"You are unsubscribed" in response.content
