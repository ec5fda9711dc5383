"""How the tests use the service: recipients, settings, API sends, driving a job, progress."""

import time
from email.message import Message
from typing import Any

import requests

from communication.services.batches import job_batch_send

from .servers import wait_until

PHONE_PREFIX = "+2332410"
BEST_DEALS_URL = "/api/ecommerce/best-deals/send-email"
# A quota with no per-second spacing, for tests about what is sent rather than how fast.
NO_SPACING = "100000/h"


def numbers(count: int, start: int = 0, prefix: str = PHONE_PREFIX) -> list[str]:
    """`count` distinct E.164 numbers: the prefix and five digits, from `start` on."""
    return [f"{prefix}{i:05d}" for i in range(start, start + count)]


def addresses(count: int, start: int = 0, prefix: str = "user") -> list[str]:
    """`count` distinct email addresses, `<prefix><i>@example.com`, from `start` on."""
    return [f"{prefix}{i}@example.com" for i in range(start, start + count)]


def configure(settings: Any, **options: Any) -> None:
    """Set service options (COMMUNICATION keys) for this test."""
    settings.COMMUNICATION = {**settings.COMMUNICATION, **options}


def use_smtp(settings: Any, port: int, timeout: float | None = None) -> None:
    """Send email in this process through Django's SMTP backend to 127.0.0.1:`port` (with
    `timeout` seconds for the connection, when given)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    if timeout is not None:
        settings.EMAIL_TIMEOUT = timeout


def send(
    api: Any,
    channel: str,
    recipients: list[str],
    status: int = 202,
    bulk: bool = True,
    **fields: Any,
) -> dict[str, Any]:
    """POST to the channel's send endpoint, asserting the answer's status; its body."""
    body = {"recipients": recipients, **fields, **({"isBulk": True} if bulk else {})}
    response = api.post(f"/api/communication/{channel}/send", body, format="json")
    assert response.status_code == status, response.json()
    return response.json()


def send_sms(
    api: Any, recipients: list[str], message: str = "Sale", **options: Any
) -> dict[str, Any]:
    return send(api, "sms", recipients, message=message, **options)


def send_email(
    api: Any,
    recipients: list[str],
    subject: str = "Deals",
    message: str = "<p>Hi</p>",
    **options: Any,
) -> dict[str, Any]:
    return send(api, "email", recipients, subject=subject, message=message, **options)


def run_until_done(job_id: object, deadline: float) -> None:
    """Run the job's batches in this process until it is finished, within `deadline` seconds."""
    stop = time.monotonic() + deadline
    while (wait := job_batch_send(job_id=job_id)) is not None:
        assert time.monotonic() < stop, "the job did not finish"
        time.sleep(wait)  # the pause the service asks for before the job's next batch


def parts(message: Message) -> dict[str, str]:
    """The decoded text of each leaf part of an email, by content type."""
    return {
        part.get_content_type(): part.get_payload(decode=True).decode(part.get_content_charset())
        for part in message.walk()
        if not part.is_multipart()
    }


# --- Following a job's progress through the API, the way a user would ---------------------------

COUNTS = ("pending", "active", "completed", "failed", "cancelled", "unknown")
ACTIVE = ("queued", "running")


class ProgressPoller:
    """Polls one job's progress endpoint, holding every poll to the invariants: its counts sum
    to the total, and the share done never goes backwards from one poll to the next.

    `api` is the test client or an `HttpApiClient`. With an `errors` list, a poll that fails
    (connection refused, a 5xx while the database restarts) is noted there and polling goes
    on; without one, it fails the test."""

    def __init__(self, api: Any, channel: str, job_id: str, errors: list[str] | None = None):
        self.api, self.url, self.job_id = api, f"/api/communication/{channel}/progress", job_id
        self.errors = errors
        self.polls: list[dict[str, Any]] = []

    def poll(self) -> dict[str, Any]:
        """One poll's body; a poll that fails fails the test."""
        response = self.api.get(self.url, {"jobId": self.job_id})
        assert response.status_code == 200, response.content
        return self._checked(response.json())

    def _poll_noting_errors(self) -> dict[str, Any] | None:
        """One poll's body, or None for a failed poll noted in `errors` (when there is a list)."""
        if self.errors is None:
            return self.poll()
        try:
            response = self.api.get(self.url, {"jobId": self.job_id})
        except requests.RequestException as err:
            self.errors.append(type(err).__name__)
            return None
        if response.status_code != 200:
            self.errors.append(f"HTTP {response.status_code}")
            return None
        return self._checked(response.json())

    def _checked(self, body: dict[str, Any]) -> dict[str, Any]:
        assert sum(body[count] for count in COUNTS) == body["total"], body
        before = self.polls[-1]["progress"] if self.polls else 0
        assert body["progress"] >= before, f"progress went backwards: {before}, then {body}"
        self.polls.append(body)
        return body

    def until_final(self, timeout: float = 60.0) -> dict[str, Any]:
        """Poll until the job is final; the last poll."""

        def final() -> bool:
            body = self._poll_noting_errors()
            return body is not None and body["status"] not in ACTIVE

        try:
            wait_until(final, timeout, 0.2, f"job {self.job_id} to finish")
        except AssertionError as err:
            raise AssertionError(f"{err}; last progress: {self.polls[-1:]}") from err
        return self.polls[-1]

    def until(self, deadline: float, interval: float = 0.5) -> list[dict[str, Any]]:
        """Poll every `interval` seconds until `deadline` (a `time.time()`); those polls."""
        polls = []
        while time.time() < deadline:
            body = self._poll_noting_errors()
            if body is not None:
                polls.append(body)
            time.sleep(interval)  # sampling a period, not waiting for a condition
        return polls


def final_progress(
    api: Any, channel: str, job_id: str, timeout: float = 60.0, errors: list[str] | None = None
) -> dict[str, Any]:
    """Follow the job with a `ProgressPoller` until it is final; the last poll."""
    return ProgressPoller(api, channel, job_id, errors).until_final(timeout)
