"""Delivery receipts and opt-outs from providers, each authenticated its own way."""

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from communication import admin_suppression  # noqa: F401  (registers the Suppression admin)
from communication.models import Delivery, Suppression
from communication.services.jobs import job_create
from communication.webhooks import twilio_signature

pytestmark = pytest.mark.django_db

SECRET = "whsec-123"
TWILIO_TOKEN = "twilio-token"
NUMBER = "+233241234567"


@pytest.fixture(autouse=True)
def secrets(settings: Any) -> None:
    settings.COMMUNICATION = {
        **settings.COMMUNICATION,
        "SMS_WEBHOOK_SECRET": SECRET,
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "SMS_PROVIDERS": (
            f"primary=webhook:http://a.example/sms; tw=twilio sid=AC1 token={TWILIO_TOKEN}-2"
        ),
    }
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret"}


def sent_delivery(user: Any, *, channel: str, recipient: str, provider: str, message_id: str):
    job = job_create(owner=user, channel=channel, recipients=[recipient], message="Hi")
    Delivery.objects.filter(job=job).update(
        status="sent", provider=provider, provider_message_id=message_id
    )
    return Delivery.objects.get(job=job)


def signed_post(client: APIClient, url: str, body: Any, secret: str = SECRET):
    raw = json.dumps(body).encode()
    signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return client.post(
        url, raw, content_type="application/json", headers={"X-Signature": signature}
    )


# --- the generic provider ------------------------------------------------------------------


def test_generic_receipt_with_a_valid_signature(user: Any, api: APIClient) -> None:
    delivery = sent_delivery(
        user, channel="sms", recipient=NUMBER, provider="primary", message_id="msg-1"
    )
    sent_delivery(user, channel="sms", recipient=NUMBER, provider="backup", message_id="msg-1")
    url = "/api/communication/webhooks/sms/primary/"

    response = signed_post(APIClient(), url, {"id": "msg-1", "status": "delivered"})

    assert response.status_code == 200 and response.json() == {"success": True, "updated": 1}
    delivery.refresh_from_db()
    assert delivery.status == "sent" and delivery.receipt_status == "delivered"
    assert delivery.receipt_at is not None
    # only the provider's own message: "msg-1" of another provider is untouched
    assert Delivery.objects.filter(receipt_status="delivered").count() == 1

    rows = api.get(f"/api/communication/jobs/{delivery.job_id}/recipients/").json()["results"]
    assert rows[0]["receiptStatus"] == "delivered" and rows[0]["receiptAt"]
    progress = api.get("/api/communication/sms/progress", {"jobId": str(delivery.job_id)}).json()
    assert progress["receipts"] == {
        "delivered": 1,
        "undeliverable": 0,
        "bounced": 0,
        "complained": 0,
    }


def test_a_failure_receipt_does_not_suppress_and_never_downgrades(user: Any) -> None:
    delivery = sent_delivery(
        user, channel="sms", recipient=NUMBER, provider="primary", message_id="msg-2"
    )
    url = "/api/communication/webhooks/sms/primary/"
    signed_post(APIClient(), url, [{"id": "msg-2", "status": "undeliverable"}])
    signed_post(APIClient(), url, {"id": "msg-2", "status": "delivered"})  # late, lower rank
    delivery.refresh_from_db()
    assert delivery.receipt_status == "undeliverable"
    assert not Suppression.objects.exists()


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Signature": "0" * 64}, {"X-Signature": "forged"}],
)
def test_generic_receipt_with_a_forged_signature_is_refused(user: Any, headers: Any) -> None:
    delivery = sent_delivery(
        user, channel="sms", recipient=NUMBER, provider="primary", message_id="msg-1"
    )
    response = APIClient().post(
        "/api/communication/webhooks/sms/primary/",
        {"id": "msg-1", "status": "delivered"},
        format="json",
        headers=headers,
    )
    assert response.status_code == 403 and response.json()["success"] is False
    delivery.refresh_from_db()
    assert delivery.receipt_status == ""


def test_a_body_signed_with_another_secret_is_refused(user: Any) -> None:
    url = "/api/communication/webhooks/sms/primary/"
    body = {"id": "msg-1", "status": "delivered"}
    assert signed_post(APIClient(), url, body, secret="guess").status_code == 403


def test_without_a_secret_every_callback_is_refused(settings: Any) -> None:
    settings.COMMUNICATION = {**settings.COMMUNICATION, "SMS_WEBHOOK_SECRET": ""}
    url = "/api/communication/webhooks/sms/primary/"
    assert signed_post(APIClient(), url, {"id": "x", "status": "delivered"}, "").status_code == 403


def test_an_unknown_provider_is_404() -> None:
    url = "/api/communication/webhooks/sms/nobody/"
    assert signed_post(APIClient(), url, {"id": "x", "status": "delivered"}).status_code == 404


def test_stop_from_the_generic_provider_suppresses_the_number(api: APIClient) -> None:
    url = "/api/communication/webhooks/sms/primary/inbound/"
    response = signed_post(APIClient(), url, {"from": "0241234567", "message": " stop "})
    assert response.status_code == 200
    suppression = Suppression.objects.get()
    assert (suppression.channel, suppression.address) == ("sms", NUMBER)
    assert (suppression.reason, suppression.source) == ("opted_out", "webhook:primary")

    response = api.post(
        "/api/communication/sms/send",
        {"recipients": [NUMBER, "+233501234567"], "message": "Sale"},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 1 and body["results"][0]["recipient"] == "+233501234567"
    assert body["rejected"] == [{"recipient": NUMBER, "reason": "suppressed: opted_out"}]

    signed_post(APIClient(), url, {"from": NUMBER, "message": "START"})
    assert not Suppression.objects.exists()


# --- Twilio ----------------------------------------------------------------------------------


def test_twilio_signature_matches_the_published_examples() -> None:
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    assert twilio_signature(url, params.items(), "12345") == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    repeated = [
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ]
    assert twilio_signature(url, repeated, "12345") == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def twilio_post(path: str, params: dict[str, str], token: str = TWILIO_TOKEN, signature=None):
    url = f"http://testserver{path}"
    if signature is None:
        payload = url + "".join(f"{k}{params[k]}" for k in sorted(params))
        digest = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
        signature = base64.b64encode(digest).decode()
    return APIClient().post(path, params, headers={"X-Twilio-Signature": signature})


def test_twilio_status_callback(user: Any) -> None:
    delivery = sent_delivery(
        user, channel="sms", recipient=NUMBER, provider="twilio", message_id="SM123"
    )
    params = {"MessageSid": "SM123", "MessageStatus": "delivered", "To": NUMBER}

    forged = twilio_post("/api/communication/webhooks/sms/twilio/", params, token="wrong")
    assert forged.status_code == 403
    tampered = twilio_post(
        "/api/communication/webhooks/sms/twilio/",
        {**params, "MessageStatus": "undelivered"},
        signature=twilio_signature(
            "http://testserver/api/communication/webhooks/sms/twilio/",
            params.items(),
            TWILIO_TOKEN,
        ),
    )
    assert tampered.status_code == 403
    delivery.refresh_from_db()
    assert delivery.receipt_status == ""

    response = twilio_post("/api/communication/webhooks/sms/twilio/", params)
    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.receipt_status == "delivered"


def test_twilio_in_the_pool_uses_its_own_auth_token(user: Any) -> None:
    delivery = sent_delivery(user, channel="sms", recipient=NUMBER, provider="tw", message_id="SM9")
    params = {"MessageSid": "SM9", "MessageStatus": "failed"}
    path = "/api/communication/webhooks/sms/tw/"
    assert twilio_post(path, params).status_code == 403  # the account-wide token is not tw's
    assert twilio_post(path, params, token=f"{TWILIO_TOKEN}-2").status_code == 200
    delivery.refresh_from_db()
    assert delivery.receipt_status == "undeliverable"


@pytest.mark.parametrize("body", ["STOP", "unsubscribe", "Stop.", "QUIT"])
def test_twilio_incoming_stop_suppresses_the_number(body: str) -> None:
    path = "/api/communication/webhooks/sms/twilio/inbound/"
    params = {"From": NUMBER, "To": "+15005550006", "Body": body, "MessageSid": "SM1"}
    assert twilio_post(path, params, token="nope").status_code == 403
    assert not Suppression.objects.exists()

    response = twilio_post(path, params)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/xml")
    assert Suppression.objects.get().address == NUMBER


def test_twilio_incoming_chat_is_not_an_opt_out() -> None:
    path = "/api/communication/webhooks/sms/twilio/inbound/"
    params = {"From": NUMBER, "Body": "please stop by tomorrow", "MessageSid": "SM1"}
    assert twilio_post(path, params).status_code == 200
    assert not Suppression.objects.exists()


# --- Arkesel ---------------------------------------------------------------------------------


def test_arkesel_receipt_authenticates_with_the_secret_in_the_url(user: Any) -> None:
    delivery = sent_delivery(
        user, channel="sms", recipient=NUMBER, provider="arkesel", message_id="ark-1"
    )
    path = "/api/communication/webhooks/sms/arkesel/"
    body = {"sms_id": "ark-1", "status": "DELIVERED"}
    assert APIClient().post(f"{path}?secret=wrong", body).status_code == 403
    assert APIClient().post(path, body).status_code == 403
    assert APIClient().post(f"{path}?secret={SECRET}", body).status_code == 200
    delivery.refresh_from_db()
    assert delivery.receipt_status == "delivered"


# --- email, through anymail --------------------------------------------------------------------


def postmark_post(event: dict[str, Any], auth: str = "hook:s3cret"):
    headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
    return APIClient().post(
        "/webhooks/anymail/postmark/tracking/",
        json.dumps(event),
        content_type="application/json",
        headers=headers,
    )


def bounce(email: str, message_id: str, kind: str = "HardBounce") -> dict[str, Any]:
    return {
        "RecordType": "Bounce",
        "Type": kind,
        "ID": 42,
        "MessageID": message_id,
        "Email": email,
        "BouncedAt": "2026-01-02T10:00:00Z",
    }


def test_a_bounce_suppresses_the_address_for_the_next_job(user: Any, api: APIClient) -> None:
    delivery = sent_delivery(
        user, channel="email", recipient="Ama@Example.com", provider="postmark", message_id="a-1"
    )
    event = bounce("Ama@Example.com", "a-1")

    assert postmark_post(event, auth="hook:wrong").status_code == 400
    assert postmark_post(event, auth="").status_code == 400
    assert not Suppression.objects.exists()

    assert postmark_post(event).status_code == 200
    delivery.refresh_from_db()
    assert delivery.receipt_status == "bounced"
    assert delivery.receipt_at.isoformat() == "2026-01-02T10:00:00+00:00"
    suppression = Suppression.objects.get()
    assert (suppression.address, suppression.reason) == ("ama@example.com", "bounced")
    assert suppression.source == "anymail:Postmark"

    response = api.post(
        "/api/communication/email/send",
        {
            "recipients": ["ama@example.com", "kofi@example.com"],
            "subject": "Deals",
            "message": "<p>Hi</p>",
        },
        format="json",
    )
    body = response.json()
    assert body["total"] == 1 and body["results"][0]["recipient"] == "kofi@example.com"
    assert body["rejected"] == [{"recipient": "ama@example.com", "reason": "suppressed: bounced"}]


def test_a_soft_bounce_does_not_suppress(user: Any) -> None:
    delivery = sent_delivery(
        user, channel="email", recipient="yaw@example.com", provider="postmark", message_id="s-1"
    )
    assert postmark_post(bounce("yaw@example.com", "s-1", kind="SoftBounce")).status_code == 200
    delivery.refresh_from_db()
    assert delivery.receipt_status == "undeliverable"
    assert not Suppression.objects.exists()


def test_email_receipts_delivered_and_complained(user: Any, api: APIClient) -> None:
    # sent through the configured EMAIL_BACKEND (locmem in tests), reported by Postmark
    delivery = sent_delivery(
        user, channel="email", recipient="yaw@example.com", provider="locmem", message_id="<m@x>"
    )
    delivered = {
        "RecordType": "Delivery",
        "MessageID": "<m@x>",
        "Recipient": "yaw@example.com",
        "DeliveredAt": "2026-01-02T10:00:00Z",
    }
    assert postmark_post(delivered).status_code == 200
    delivery.refresh_from_db()
    assert delivery.receipt_status == "delivered"

    complaint = {**bounce("yaw@example.com", "<m@x>", kind="SpamComplaint")}
    complaint["RecordType"] = "SpamComplaint"
    assert postmark_post(complaint).status_code == 200
    delivery.refresh_from_db()
    assert delivery.receipt_status == "complained"
    assert Suppression.objects.get().reason == "complained"
    progress = api.get("/api/communication/email/progress", {"jobId": str(delivery.job_id)})
    assert progress.json()["receipts"]["complained"] == 1


def test_only_suppressed_recipients_is_a_400(api: APIClient) -> None:
    Suppression.objects.create(channel="email", address="ama@example.com", reason="bounced")
    response = api.post(
        "/api/communication/email/send",
        {"recipients": ["AMA@example.com"], "subject": "Deals", "message": "<p>Hi</p>"},
        format="json",
    )
    assert response.status_code == 400
    assert "suppressed: bounced" in json.dumps(response.json())


# --- the admin -------------------------------------------------------------------------------


def test_staff_lift_a_suppression_in_the_admin() -> None:
    staff = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw-admin-1")
    kept = Suppression.objects.create(channel="sms", address="+233501234567", reason="opted_out")
    lifted = Suppression.objects.create(
        channel="email", address="ama@example.com", reason="bounced"
    )
    client = APIClient()
    client.force_login(staff)

    listing = client.get("/admin/communication/suppression/", {"q": "ama"})
    assert listing.status_code == 200 and b"ama@example.com" in listing.content
    response = client.post(
        "/admin/communication/suppression/",
        {"action": "lift", "_selected_action": [lifted.pk]},
    )
    assert response.status_code == 302
    assert list(Suppression.objects.all()) == [kept]


def test_suppressions_cost_two_queries_whatever_the_size(django_assert_num_queries: Any) -> None:
    from communication.recipients import recipients_parse
    from communication.suppression import recipients_suppress

    Suppression.objects.create(channel="email", address="b@example.com", reason="complained")
    parsed = recipients_parse(
        [f"u{i}@example.com" for i in range(2000)] + ["B@example.com", "bad"], channel="email"
    )
    with django_assert_num_queries(2):  # the list's size, then the smaller side
        result = recipients_suppress(parsed, "email")
    assert len(result.valid) == 2000
    assert result.rejected[-1] == {"recipient": "B@example.com", "reason": "suppressed: complained"}
    assert result.rejected[0]["recipient"] == "bad"
