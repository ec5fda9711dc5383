"""Email provider errors mapped onto the retry rules (SPEC §4), against a real aiosmtpd server
through Django's SMTP backend; anymail-like HTTP errors; the deterministic Message-ID."""

import smtplib
import uuid
from typing import Any

import pytest
import requests
from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused, AnymailRequestsAPIError
from django.core.mail import EmailMessage

from communication.backends import email_provider_name, get_email_backend
from communication.backends.email import classify_email_error
from communication.exceptions import CommunicationError, RecipientsRefused
from communication.models import Channel, Delivery, Job
from communication.senders import EmailSender, message_id
from tests.helpers import use_smtp
from tests.servers import SmtpServer, free_port


@pytest.fixture
def smtp(settings: Any, smtp_server: SmtpServer) -> SmtpServer:
    use_smtp(settings, smtp_server.port, timeout=5)
    return smtp_server


def send_error(to: str) -> CommunicationError:
    """Send one email through the configured backend; return the classified error it raised."""
    backend = get_email_backend()
    email = EmailMessage("Hi", "Body", "shop@example.com", [to], connection=backend)
    with pytest.raises(Exception) as info:  # any provider error is classified
        backend.send_messages([email])
    return classify_email_error(info.value, email_provider_name())


class TestSmtpErrors:
    def test_451_on_rcpt_is_retryable(self, smtp: SmtpServer) -> None:
        smtp.failures.add("ama@example.com", 451)
        error = send_error("ama@example.com")
        assert (error.retryable, error.status_code, error.provider) == (True, 451, "smtp")
        assert not isinstance(error, RecipientsRefused)
        assert "451" in str(error)

    def test_550_on_rcpt_is_a_permanent_refusal(self, smtp: SmtpServer) -> None:
        smtp.failures.add("nobody@example.com", 550)
        error = send_error("nobody@example.com")
        assert isinstance(error, RecipientsRefused)
        assert (error.retryable, error.status_code) == (False, 550)

    def test_a_retry_after_451_is_delivered(self, smtp: SmtpServer) -> None:
        smtp.failures.add("ama@example.com", 451, times=1)
        assert send_error("ama@example.com").retryable
        backend = get_email_backend()
        assert backend.send_messages(
            [EmailMessage("Hi", "Body", "s@example.com", ["ama@example.com"])]
        )
        assert smtp.recipients() == ["ama@example.com"]

    def test_server_down_is_retryable(self, settings: Any) -> None:
        use_smtp(settings, free_port(), timeout=5)  # nothing listens there
        error = send_error("ama@example.com")
        assert error.retryable is True
        assert error.status_code is None

    def test_server_gone_mid_batch_is_retryable(self, settings: Any) -> None:
        # A server of its own: an aiosmtpd Controller cannot be started again once stopped.
        server = SmtpServer()
        server.start()
        use_smtp(settings, server.port, timeout=5)
        backend = get_email_backend()
        assert backend.open()
        server.stop()
        email = EmailMessage("Hi", "Body", "s@example.com", ["ama@example.com"])
        with pytest.raises(Exception) as info:
            backend.send_messages([email])
        assert classify_email_error(info.value, "smtp").retryable is True


@pytest.mark.parametrize(
    ("err", "retryable", "status"),
    [
        (smtplib.SMTPDataError(452, b"Insufficient storage"), True, 452),
        (smtplib.SMTPDataError(554, b"Message rejected"), False, 554),
        (smtplib.SMTPSenderRefused(553, b"Sender refused", "s@example.com"), False, 553),
        (smtplib.SMTPAuthenticationError(535, b"Bad credentials"), False, 535),
        (smtplib.SMTPConnectError(554, b"No service"), True, 554),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), True, None),
        (smtplib.SMTPNotSupportedError("SMTPUTF8 not supported"), False, None),
        (TimeoutError("timed out"), True, None),
        (ConnectionResetError(104, "reset"), True, None),
        (ValueError("bad header"), False, None),
    ],
)
def test_smtp_and_transport_errors(err: Exception, retryable: bool, status: int | None) -> None:
    error = classify_email_error(err, "smtp")
    assert (error.retryable, error.status_code) == (retryable, status)
    assert error.provider == "smtp"


def test_a_communication_error_passes_through() -> None:
    error = CommunicationError("already classified", retryable=True)
    assert classify_email_error(error, "smtp") is error


# --- anymail's HTTP API errors --------------------------------------------------------------


def esp_response(status: int, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    return response


@pytest.mark.parametrize(
    ("status", "headers", "retryable", "retry_after"),
    [
        (429, {"Retry-After": "12"}, True, 12.0),
        (429, {}, True, None),
        (503, {"Retry-After": "3"}, True, 3.0),
        (500, {}, True, None),
        (400, {}, False, None),
        (401, {}, False, None),
        (422, {}, False, None),
    ],
)
def test_anymail_api_errors(
    status: int, headers: dict[str, str], retryable: bool, retry_after: float | None
) -> None:
    err = AnymailAPIError(
        f"ESP API response {status}", status_code=status, response=esp_response(status, headers)
    )
    error = classify_email_error(err, "amazon_ses")
    assert (error.retryable, error.status_code, error.retry_after) == (
        retryable,
        status,
        retry_after,
    )
    assert error.provider == "amazon_ses"


def test_anymail_recipients_refused_is_permanent() -> None:
    error = classify_email_error(AnymailRecipientsRefused("all refused"), "sendgrid")
    assert isinstance(error, RecipientsRefused)
    assert error.retryable is False


def test_anymail_transport_error_is_retryable() -> None:
    error = classify_email_error(AnymailRequestsAPIError("Error posting to ESP"), "mailgun")
    assert error.retryable is True
    assert error.status_code is None


def test_requests_http_error_uses_its_response_status() -> None:
    err = requests.HTTPError("400 Client Error", response=esp_response(400))
    assert (
        classify_email_error(err, "x").retryable,
        classify_email_error(err, "x").status_code,
    ) == (
        False,
        400,
    )
    err = requests.HTTPError("503 Server Error", response=esp_response(503))
    assert classify_email_error(err, "x").retryable is True


# --- Message-ID -----------------------------------------------------------------------------------


def job_and_delivery(pk: int = 7) -> tuple[Job, Delivery]:
    job = Job(
        id=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        channel=Channel.EMAIL,
        subject="Deals",
        message="<p>Hi</p>",
    )
    return job, Delivery(pk=pk, job=job, recipient="ama@example.com")


def test_message_id_is_deterministic_per_delivery(settings: Any) -> None:
    settings.DEFAULT_FROM_EMAIL = "Best Deals <news@shop.example>"
    job, delivery = job_and_delivery()
    assert message_id(job, delivery) == "<12345678123456781234567812345678.7@shop.example>"
    assert message_id(job, delivery) == message_id(*job_and_delivery())
    assert message_id(job, delivery) != message_id(*job_and_delivery(pk=8))


def test_message_id_domain_defaults_to_localhost(settings: Any) -> None:
    settings.DEFAULT_FROM_EMAIL = "noreply"
    assert message_id(*job_and_delivery()).endswith("@localhost>")


def test_a_resend_carries_the_same_message_id(settings: Any, smtp: SmtpServer) -> None:
    settings.DEFAULT_FROM_EMAIL = "news@shop.example"
    job, delivery = job_and_delivery()
    sender = EmailSender(job)
    sender.open()
    try:
        first = sender.send(sender.prepare(delivery))
        second = sender.send(sender.prepare(delivery))
    finally:
        sender.close()
    expected = message_id(job, delivery)
    assert first == second == expected
    assert [m["Message-ID"] for m in smtp.messages()] == [expected, expected]
