"""Bad input never gets a 5xx (SPEC §3: "never a 500 and never an HTML page for bad input").

Property tests over the send endpoints: random unicode, huge strings, deep JSON, numbers and
objects as recipients, invalid UTF-8. Every answer is a JSON 4xx that creates nothing, or a
200/202 for input that is actually valid, whose job holds exactly the valid recipients.
"""

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.throttling import ScopedRateThrottle, UserRateThrottle

from communication.models import Delivery, Job
from communication.recipients import recipients_parse

pytestmark = pytest.mark.django_db

EMAIL_SEND = "/api/communication/email/send"
SMS_SEND = "/api/communication/sms/send"
BEST_DEALS = "/api/ecommerce/best-deals/send-email"

examples = hypothesis_settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
phone_like = st.from_regex(r"\+?[0-9 ()-]{3,20}", fullmatch=True)
texts = st.text(max_size=40) | st.text(min_size=900, max_size=1100) | st.just("x" * 20_000)
recipient_items = (
    st.emails()
    | phone_like
    | st.text(max_size=80)
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.none()
    | st.booleans()
    | st.dictionaries(st.text(max_size=5), scalars, max_size=2)
    | st.lists(scalars, max_size=2)
)
recipient_lists = st.lists(recipient_items, max_size=12) | json_values


def bodies(fields: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


email_bodies = bodies(
    {
        "recipients": recipient_lists,
        "subject": texts | json_values,
        "message": texts | json_values,
        "text": texts | json_values,
        "isBulk": st.booleans() | json_values,
    }
)
sms_bodies = bodies(
    {
        "recipients": recipient_lists,
        "message": texts | st.text(min_size=1590, max_size=1610) | json_values,
        "isBulk": st.booleans() | json_values,
    }
)


@pytest.fixture(autouse=True)
def local_and_unthrottled(settings, monkeypatch):
    """Sends stay in locmem outboxes, rate limits are out of the way (hourly quotas only, so
    synchronous sends never wait), and the per-user throttle does not turn examples into 429s."""
    settings.COMMUNICATION = {
        **settings.COMMUNICATION,
        "EMAIL_RATE_LIMIT": "100000000/h",
        "SMS_RATE_LIMIT": "100000000/h",
    }
    for throttle in (ScopedRateThrottle, UserRateThrottle):
        monkeypatch.setattr(throttle, "allow_request", lambda self, request, view: True)


def counts() -> tuple[int, int]:
    return Job.objects.count(), Delivery.objects.count()


def is_char(value: Any, blank: bool = False) -> bool:
    """Would DRF's CharField accept it (strings and numbers, no NUL)?"""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return False
    text = str(value)
    return "\x00" not in text and (blank or bool(text.strip()))


def valid_recipients(body: dict[str, Any], channel: str) -> list[str] | None:
    """The recipients a valid request would queue, or None when the request is invalid."""
    recipients = body.get("recipients")
    if not isinstance(recipients, list) or not recipients:
        return None
    if not all(is_char(r, blank=True) for r in recipients):
        return None
    parsed = recipients_parse([str(r) for r in recipients], channel=channel)
    return parsed.valid or None


def check(response, before: tuple[int, int], expected: list[str] | None) -> None:
    assert response.status_code < 500, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = response.json()
    if response.status_code >= 400:
        assert body["success"] is False and body["error"], body
        assert counts() == before, "a refused request created rows"
        return
    assert response.status_code in (200, 202), body
    assert expected is not None, f"accepted an invalid request: {body}"
    job = Job.objects.get(id=body["jobId"])
    assert body["total"] == job.total == len(expected) == job.deliveries.count()
    assert sorted(job.deliveries.values_list("recipient", flat=True)) == sorted(expected)


@examples
@given(body=email_bodies)
def test_email_send_never_fails_on_bad_input(api, body):
    before = counts()
    response = api.post(EMAIL_SEND, body, format="json")
    expected = valid_recipients(body, "email")
    subject, message = body.get("subject"), body.get("message")
    if response.status_code < 300:
        assert is_char(subject) and is_char(message)
        assert "\n" not in str(subject) and "\r" not in str(subject)
        assert len(str(subject).strip()) <= 998
    check(response, before, expected)


@examples
@given(body=sms_bodies)
def test_sms_send_never_fails_on_bad_input(api, body):
    before = counts()
    response = api.post(SMS_SEND, body, format="json")
    if response.status_code < 300:
        assert is_char(body.get("message")) and len(str(body["message"]).strip()) <= 1600
    check(response, before, valid_recipients(body, "sms"))


@examples
@given(raw=st.binary(max_size=300), path=st.sampled_from([EMAIL_SEND, SMS_SEND, BEST_DEALS]))
def test_raw_bytes_and_invalid_utf8_are_refused(api, raw, path):
    before = counts()
    response = api.generic("POST", path, raw, content_type="application/json")
    try:
        json.loads(raw)
    except ValueError:  # not JSON (invalid UTF-8 included): must be a 400
        assert response.status_code == 400, response.content[:300]
    check(response, before, [] if response.status_code < 300 else None)


@examples
@given(
    body=bodies(
        {
            "customerIds": st.lists(st.integers() | json_values, max_size=6) | json_values,
            "sendToAll": st.booleans() | json_values,
            "manualEmails": st.lists(recipient_items, max_size=6) | json_values,
        }
    )
)
def test_best_deals_never_fails_on_bad_input(api, body):
    before = counts()
    response = api.post(BEST_DEALS, body, format="json")
    assert response.status_code < 500, (response.status_code, response.content[:500])
    if response.status_code >= 400:
        assert response.json()["success"] is False and counts() == before


@examples
@given(job_id=st.text(max_size=60) | st.uuids().map(str))
def test_progress_with_any_job_id_is_a_4xx(api, job_id):
    for channel in ("email", "sms"):
        response = api.get(f"/api/communication/{channel}/progress", {"jobId": job_id})
        assert response.status_code in (400, 404), response.content[:300]


@pytest.mark.parametrize("depth", [100, 5_000, 100_000])
def test_deeply_nested_json_is_refused(api, depth):
    before = counts()
    raw = "[" * depth + "]" * depth
    body = '{"recipients": ' + raw + ', "subject": "Hi", "message": "<p>Hi</p>"}'
    response = api.generic("POST", EMAIL_SEND, body, content_type="application/json")
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert counts() == before


def test_huge_fields(api, settings):
    before = counts()
    huge = "é" * 1_000_000
    response = api.post(EMAIL_SEND, {"recipients": ["a@example.com"], "subject": huge,
                                     "message": "x"}, format="json")  # fmt: skip
    assert response.status_code == 400 and counts() == before
    response = api.post(SMS_SEND, {"recipients": ["+233241234567"], "message": huge}, format="json")
    assert response.status_code == 400 and counts() == before
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000_000
    response = api.post(EMAIL_SEND, {"recipients": ["a@example.com"], "subject": "Hi",
                                     "message": huge}, format="json")  # fmt: skip
    assert response.status_code == 413 and counts() == before


@pytest.mark.parametrize(
    "recipients",
    [[1, 2, 3], [{"email": "a@example.com"}], [["a@example.com"]], [None], [True], {"a": 1}, 42],
)
def test_numbers_and_objects_as_email_recipients_are_refused(api, recipients):
    before = counts()
    body = {"recipients": recipients, "subject": "Hi", "message": "<p>Hi</p>"}
    response = api.post(EMAIL_SEND, body, format="json")
    assert response.status_code == 400, response.json()
    assert counts() == before
