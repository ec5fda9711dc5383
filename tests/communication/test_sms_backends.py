"""The SMS backend contract, run against every backend (like Django's `BaseEmailBackendTests`).

The HTTP providers are tested against a real local server (pytest-httpserver): the exact request
each vendor expects, and how each kind of reply maps onto the retry rules of SPEC §4.
"""

import base64
import io
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from communication.backends import get_sms_backend, sms_provider_name
from communication.backends.http import retry_after_seconds
from communication.backends.sms import console, file, locmem
from communication.backends.sms.base import BaseSmsBackend, SmsMessage
from communication.exceptions import CommunicationError, ProviderConfigurationError
from tests.helpers import configure
from tests.servers import free_port

TO = ["+233241234567", "+233501234567", "+14155550123"]

Received = Callable[[], list[str]]


def messages(*recipients: str, body: str = "Hello") -> list[SmsMessage]:
    return [SmsMessage(to=to, body=body, reference=f"ref-{to}") for to in recipients]


class SmsBackendContract:
    """What every SMS backend promises, mirroring Django's email backend contract."""

    # True when the backend holds a connection (file, session) that open() creates.
    opens_connection = True

    @pytest.fixture
    def backend(self) -> BaseSmsBackend:
        raise NotImplementedError

    @pytest.fixture
    def received(self) -> Received:
        """The recipients the provider received so far, in order."""
        raise NotImplementedError

    def test_send_messages_returns_how_many_were_sent(
        self, backend: BaseSmsBackend, received: Received
    ) -> None:
        sms = messages(TO[0], TO[1])
        count = backend.send_messages(sms)
        assert type(count) is int
        assert count == 2
        assert received() == [TO[0], TO[1]]
        assert all(message.provider_message_id for message in sms)

    def test_send_messages_of_nothing_returns_zero(
        self, backend: BaseSmsBackend, received: Received
    ) -> None:
        assert backend.send_messages([]) == 0
        assert received() == []

    def test_open_returns_true_only_when_it_created_the_connection(
        self, backend: BaseSmsBackend
    ) -> None:
        try:
            assert backend.open() is self.opens_connection
            assert backend.open() is False
        finally:
            backend.close()
        assert backend.open() is self.opens_connection  # a closed backend opens again
        backend.close()

    def test_close_is_idempotent(self, backend: BaseSmsBackend) -> None:
        backend.close()  # never opened
        backend.open()
        backend.close()
        backend.close()

    def test_context_manager_opens_once_for_many_sends(
        self, backend: BaseSmsBackend, received: Received
    ) -> None:
        with backend as entered:
            assert entered is backend
            assert backend.open() is False  # already open: the caller's connection
            assert backend.send_messages(messages(TO[0])) == 1
            assert backend.send_messages(messages(TO[1], TO[2])) == 2
            assert backend.open() is False  # send_messages left it open
        assert received() == TO
        assert backend.open() is self.opens_connection  # __exit__ closed it
        backend.close()

    def test_send_messages_closes_the_connection_it_opened(
        self, backend: BaseSmsBackend, received: Received
    ) -> None:
        backend.send_messages(messages(TO[0]))
        assert backend.open() is self.opens_connection
        backend.close()


class TestLocmemBackend(SmsBackendContract):
    opens_connection = False

    @pytest.fixture
    def backend(self) -> BaseSmsBackend:
        return get_sms_backend("locmem")

    @pytest.fixture
    def received(self) -> Received:
        return lambda: [message.to for message in locmem.outbox]

    def test_outbox_keeps_the_messages(self, backend: BaseSmsBackend) -> None:
        backend.send_messages(messages(TO[0], body="Your code is 1234"))
        assert [(m.to, m.body, m.from_) for m in locmem.outbox] == [
            (TO[0], "Your code is 1234", "Messaging")
        ]
        assert locmem.outbox[0].provider_message_id == "locmem-1"


class TestConsoleBackend(SmsBackendContract):
    opens_connection = False

    @pytest.fixture
    def stream(self) -> io.StringIO:
        return io.StringIO()

    @pytest.fixture
    def backend(self, stream: io.StringIO) -> BaseSmsBackend:
        return console.SmsBackend(stream=stream)

    @pytest.fixture
    def received(self, stream: io.StringIO) -> Received:
        def recipients() -> list[str]:
            lines = stream.getvalue().splitlines()
            return [line.split(" to ")[1].rstrip(":") for line in lines if line.startswith("SMS ")]

        return recipients

    def test_writes_sender_recipient_and_body(
        self, backend: BaseSmsBackend, stream: io.StringIO
    ) -> None:
        backend.send_messages([SmsMessage(to=TO[0], body="Hi Ama", from_="Shop")])
        assert stream.getvalue().startswith(f"SMS from Shop to {TO[0]}:\nHi Ama\n")

    def test_is_the_default_backend(self, settings: Any) -> None:
        configure(settings, SMS_BACKEND="console")
        assert isinstance(get_sms_backend(), console.SmsBackend)
        assert sms_provider_name() == "console"


class TestFileBackend(SmsBackendContract):
    @pytest.fixture
    def backend(self, settings: Any, tmp_path: Path) -> BaseSmsBackend:
        configure(settings, SMS_FILE_PATH=str(tmp_path / "sms"))
        return get_sms_backend("file")

    @pytest.fixture
    def received(self, tmp_path: Path) -> Received:
        def recipients() -> list[str]:
            files = sorted((tmp_path / "sms").glob("*.jsonl"), key=lambda p: p.stat().st_mtime_ns)
            lines = [line for path in files for line in path.read_text().splitlines()]
            return [json.loads(line)["to"] for line in lines]

        return recipients

    def test_writes_json_lines(self, backend: BaseSmsBackend, tmp_path: Path) -> None:
        with backend:
            backend.send_messages([SmsMessage(to=TO[0], body="Akwaaba ✓", from_="Shop")])
        [path] = (tmp_path / "sms").glob("*.jsonl")
        assert json.loads(path.read_text()) == {"to": TO[0], "from": "Shop", "message": "Akwaaba ✓"}

    def test_unwritable_directory_names_the_setting(self, tmp_path: Path) -> None:
        blocker = tmp_path / "a-file"
        blocker.write_text("")
        backend = file.SmsBackend(file_path=str(blocker / "sms"))
        with pytest.raises(ProviderConfigurationError, match="SMS_FILE_PATH"):
            backend.open()
        backend.close()


# --- HTTP providers -----------------------------------------------------------------------------


class HttpBackendContract(SmsBackendContract):
    """An HTTP provider behind pytest-httpserver: its request shape and error mapping."""

    alias: str
    path: str

    def configure(self, settings: Any, url: str) -> None:
        """Point the backend at `url` (the server's root, no trailing slash)."""
        raise NotImplementedError

    def ok_response(self, request: Request) -> Response:
        """The provider's reply to an accepted message."""
        raise NotImplementedError

    def recipient(self, request: Request) -> str:
        """The E.164 recipient of a request the provider received."""
        raise NotImplementedError

    def check_request(self, request: Request, message: SmsMessage) -> None:
        """Assert the request is exactly what the vendor's API expects for `message`."""
        raise NotImplementedError

    @pytest.fixture
    def backend(self, settings: Any, httpserver: HTTPServer) -> BaseSmsBackend:
        configure(settings, PROVIDER_TIMEOUT=2.0)
        self.configure(settings, httpserver.url_for("").rstrip("/"))
        httpserver.expect_request(self.path, method="POST").respond_with_handler(self.ok_response)
        return get_sms_backend(self.alias)

    @pytest.fixture
    def received(self, httpserver: HTTPServer) -> Received:
        def recipients() -> list[str]:
            return [
                self.recipient(request)
                for request, response in httpserver.log
                if 200 <= response.status_code < 300
            ]

        return recipients

    def fail_next(
        self, httpserver: HTTPServer, status: int, headers: dict[str, str] | None = None
    ) -> None:
        httpserver.expect_oneshot_request(self.path, method="POST").respond_with_json(
            {"error": "failed"}, status=status, headers=headers or {}
        )

    def send_one(self, backend: BaseSmsBackend) -> SmsMessage:
        [message] = messages(TO[0])
        backend.send_messages([message])
        return message

    def test_request_has_the_vendor_shape(
        self, backend: BaseSmsBackend, httpserver: HTTPServer
    ) -> None:
        message = SmsMessage(to=TO[0], body="Hi Ama, 20% off today", reference="job1-7")
        backend.send_messages([message])
        [(request, _response)] = httpserver.log
        assert request.method == "POST"
        assert request.path == self.path
        self.check_request(request, message)

    def test_accepted_message_gets_the_provider_id(self, backend: BaseSmsBackend) -> None:
        assert self.send_one(backend).provider_message_id == "prov-1"

    @pytest.mark.parametrize("status", [429, 500, 502, 503])
    def test_429_and_5xx_are_retryable(
        self, backend: BaseSmsBackend, httpserver: HTTPServer, status: int
    ) -> None:
        self.fail_next(httpserver, status, {"Retry-After": "7"})
        with pytest.raises(CommunicationError) as info:
            self.send_one(backend)
        error = info.value
        assert (error.retryable, error.status_code, error.retry_after) == (True, status, 7.0)
        assert error.provider == self.alias
        assert self.send_one(backend).provider_message_id  # the retry goes through

    def test_retry_after_as_an_http_date(
        self, backend: BaseSmsBackend, httpserver: HTTPServer
    ) -> None:
        when = datetime.now(UTC) + timedelta(seconds=30)
        self.fail_next(httpserver, 503, {"Retry-After": format_datetime(when, usegmt=True)})
        with pytest.raises(CommunicationError) as info:
            self.send_one(backend)
        assert info.value.retry_after is not None
        assert 25 <= info.value.retry_after <= 30

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
    def test_other_4xx_are_permanent(
        self, backend: BaseSmsBackend, httpserver: HTTPServer, status: int
    ) -> None:
        self.fail_next(httpserver, status)
        with pytest.raises(CommunicationError) as info:
            self.send_one(backend)
        assert (info.value.retryable, info.value.status_code) == (False, status)
        assert info.value.retry_after is None

    def test_a_redirect_is_not_followed_nor_taken_as_sent(
        self, backend: BaseSmsBackend, httpserver: HTTPServer
    ) -> None:
        httpserver.expect_oneshot_request(self.path, method="POST").respond_with_response(
            Response(status=302, headers={"Location": "/elsewhere"})
        )
        with pytest.raises(CommunicationError) as info:
            self.send_one(backend)
        assert (info.value.retryable, info.value.status_code) == (False, 302)
        assert len(httpserver.log) == 1

    def test_connection_refused_is_retryable(self, settings: Any) -> None:
        self.configure(settings, f"http://127.0.0.1:{free_port()}")
        backend = get_sms_backend(self.alias)
        with pytest.raises(CommunicationError) as info:
            self.send_one(backend)
        assert info.value.retryable is True
        assert info.value.status_code is None
        assert isinstance(info.value.__cause__, requests.ConnectionError)

    def test_timeout_is_retryable(
        self, settings: Any, backend: BaseSmsBackend, httpserver: HTTPServer
    ) -> None:
        configure(settings, PROVIDER_TIMEOUT=0.2)
        backend = get_sms_backend(self.alias)

        def slow(request: Request) -> Response:
            time.sleep(0.6)  # the slow provider being tested: it answers after the timeout
            return self.ok_response(request)

        httpserver.expect_oneshot_request(self.path, method="POST").respond_with_handler(slow)
        started = time.monotonic()
        with pytest.raises(CommunicationError) as info:
            self.send_one(backend)
        assert time.monotonic() - started < 0.55
        assert info.value.retryable is True
        assert isinstance(info.value.__cause__, requests.Timeout)

    def test_one_session_is_reused_within_an_opened_backend(
        self, backend: BaseSmsBackend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        sessions: list[requests.Session] = []

        class CountingSession(requests.Session):
            def __init__(self) -> None:
                super().__init__()
                sessions.append(self)

        monkeypatch.setattr(requests, "Session", CountingSession)
        with backend:
            backend.send_messages(messages(TO[0], TO[1]))
            backend.send_messages(messages(TO[2]))
        assert len(sessions) == 1
        backend.send_messages(messages(TO[0], TO[1]))  # not opened: one session for the call
        assert len(sessions) == 2

    def test_a_failure_closes_the_session_send_messages_opened(
        self, backend: BaseSmsBackend, httpserver: HTTPServer
    ) -> None:
        self.fail_next(httpserver, 503)
        with pytest.raises(CommunicationError):
            backend.send_messages(messages(TO[0], TO[1]))
        assert backend.session is None  # type: ignore[attr-defined]
        assert len(httpserver.log) == 1  # it stopped at the first failure

    def test_a_failure_inside_with_keeps_the_session(
        self, backend: BaseSmsBackend, httpserver: HTTPServer
    ) -> None:
        self.fail_next(httpserver, 429)
        with backend:
            session = backend.session  # type: ignore[attr-defined]
            with pytest.raises(CommunicationError):
                self.send_one(backend)
            assert self.send_one(backend).provider_message_id
            assert backend.session is session  # type: ignore[attr-defined]


class TestWebhookBackend(HttpBackendContract):
    alias = "webhook"
    path = "/sms"

    def configure(self, settings: Any, url: str) -> None:
        configure(settings, SMS_WEBHOOK_URL=f"{url}{self.path}")

    def ok_response(self, request: Request) -> Response:
        return Response(json.dumps({"id": "prov-1"}), status=200, content_type="application/json")

    def recipient(self, request: Request) -> str:
        return request.get_json()["to"]

    def check_request(self, request: Request, message: SmsMessage) -> None:
        assert request.headers["Content-Type"] == "application/json"
        assert request.get_json() == {
            "to": message.to,
            "message": message.body,
            "from": "Messaging",
        }
        assert request.headers["Idempotency-Key"] == "job1-7"

    def test_a_2xx_without_json_is_sent_without_an_id(
        self, backend: BaseSmsBackend, httpserver: HTTPServer
    ) -> None:
        httpserver.expect_oneshot_request(self.path).respond_with_data("OK", status=202)
        assert self.send_one(backend).provider_message_id == ""

    def test_missing_url_names_the_setting(self, settings: Any) -> None:
        configure(settings, SMS_WEBHOOK_URL="")
        with pytest.raises(ProviderConfigurationError, match="SMS_WEBHOOK_URL"):
            get_sms_backend("webhook")


class TestTwilioBackend(HttpBackendContract):
    alias = "twilio"
    path = "/2010-04-01/Accounts/AC0123456789/Messages.json"

    def configure(self, settings: Any, url: str) -> None:
        configure(
            settings,
            TWILIO_API_URL=url,
            TWILIO_ACCOUNT_SID="AC0123456789",
            TWILIO_AUTH_TOKEN="secret-token",
            SMS_SENDER_ID="+15005550006",
        )

    def ok_response(self, request: Request) -> Response:
        body = {"sid": "prov-1", "status": "queued", "to": request.form["To"]}
        return Response(json.dumps(body), status=201, content_type="application/json")

    def recipient(self, request: Request) -> str:
        return request.form["To"]

    def check_request(self, request: Request, message: SmsMessage) -> None:
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert request.form.to_dict() == {
            "To": message.to,
            "From": "+15005550006",
            "Body": message.body,
        }
        credentials = base64.b64encode(b"AC0123456789:secret-token").decode()
        assert request.headers["Authorization"] == f"Basic {credentials}"

    @pytest.mark.parametrize("missing", ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"])
    def test_missing_credentials_name_the_setting(self, settings: Any, missing: str) -> None:
        self.configure(settings, "https://api.twilio.com")
        configure(settings, **{missing: ""})
        with pytest.raises(ProviderConfigurationError, match=missing):
            get_sms_backend("twilio")


class TestArkeselBackend(HttpBackendContract):
    alias = "arkesel"
    path = "/api/v2/sms/send"

    def configure(self, settings: Any, url: str) -> None:
        configure(settings, ARKESEL_API_URL=url, ARKESEL_API_KEY="ark-key")

    def ok_response(self, request: Request) -> Response:
        [number] = request.get_json()["recipients"]
        body = {"status": "success", "data": [{"recipient": number, "id": "prov-1"}]}
        return Response(json.dumps(body), status=200, content_type="application/json")

    def recipient(self, request: Request) -> str:
        return "+" + request.get_json()["recipients"][0]

    def check_request(self, request: Request, message: SmsMessage) -> None:
        assert request.headers["api-key"] == "ark-key"
        assert request.get_json() == {
            "sender": "Messaging",
            "message": message.body,
            "recipients": [message.to.removeprefix("+")],
        }

    def test_sender_id_is_cut_to_11_characters(
        self, backend: BaseSmsBackend, httpserver: HTTPServer
    ) -> None:
        backend.send_messages([SmsMessage(to=TO[0], body="Hi", from_="BestDealsGhana")])
        [(request, _response)] = httpserver.log
        assert request.get_json()["sender"] == "BestDealsGh"

    def test_a_200_that_is_not_success_is_a_permanent_refusal(
        self, backend: BaseSmsBackend, httpserver: HTTPServer
    ) -> None:
        httpserver.expect_oneshot_request(self.path).respond_with_json(
            {"status": "error", "message": "Invalid phone number"}
        )
        with pytest.raises(CommunicationError, match="Invalid phone number") as info:
            self.send_one(backend)
        assert info.value.retryable is False

    def test_missing_api_key_names_the_setting(self, settings: Any) -> None:
        configure(settings, ARKESEL_API_KEY="")
        with pytest.raises(ProviderConfigurationError, match="ARKESEL_API_KEY"):
            get_sms_backend("arkesel")


# --- lookup and helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "module"),
    [("console", console), ("locmem", locmem), ("file", file)],
)
def test_aliases_resolve_to_the_vendor_module(name: str, module: Any) -> None:
    assert type(get_sms_backend(name)) is module.SmsBackend


def test_dotted_path_and_the_setting(settings: Any) -> None:
    configure(settings, SMS_BACKEND="communication.backends.sms.locmem.SmsBackend")
    assert type(get_sms_backend()) is locmem.SmsBackend
    assert sms_provider_name() == "locmem"


@pytest.mark.parametrize(
    "name", ["twillio", "communication.nothing.SmsBackend", "requests.Session"]
)
def test_unknown_backend_is_a_configuration_error(settings: Any, name: str) -> None:
    with pytest.raises(ProviderConfigurationError, match="SMS_BACKEND"):
        get_sms_backend(name)
    configure(settings, SMS_BACKEND=name)
    with pytest.raises(ProviderConfigurationError, match="SMS_BACKEND"):
        sms_provider_name()


def test_configuration_error_is_also_improperly_configured(settings: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    configure(settings, SMS_WEBHOOK_URL="")
    with pytest.raises(ImproperlyConfigured):
        get_sms_backend("webhook")


def test_an_unimplemented_hook_names_the_class() -> None:
    class Incomplete(BaseSmsBackend):
        pass

    with pytest.raises(NotImplementedError, match="Incomplete must implement _send"):
        Incomplete().send_messages(messages(TO[0]))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 3 ", 3.0),
        ("0", 0.0),
        ("-5", None),
        ("1e9", None),
        ("nan", None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past
        ("Sun, 29 Nov 2026 12:00:30 GMT", 30.0),
        ("Sun, 29 Nov 2026 12:00:30 -0000", 30.0),  # no zone information: UTC
    ],
)
def test_retry_after_seconds(header: str | None, expected: float | None) -> None:
    now = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds(header, now=now) == expected
