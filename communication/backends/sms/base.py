"""The SMS backend contract, shaped like Django's email backends.

`open()` returns True only when it created the connection, `close()` may be called twice,
`send_messages()` returns how many were sent and `with backend:` opens and closes. A failed send
raises a `CommunicationError` that says whether a retry may help; the loop lives here and the
vendors fill in hooks.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import requests
from django.core.exceptions import ImproperlyConfigured

from ...conf import get_required_setting, get_setting
from ...exceptions import CommunicationError, ProviderConfigurationError
from ..http import http_status_error


@dataclass
class SmsMessage:
    to: str  # E.164, e.g. +233241234567
    body: str
    from_: str = ""
    reference: str = ""  # our id for the message: lets a provider de-duplicate a re-send
    provider_message_id: str = ""  # set by the backend once the provider accepted the message

    def __post_init__(self) -> None:
        self.from_ = self.from_ or get_setting("SMS_SENDER_ID")


def required_setting(name: str, provider: str) -> Any:
    """A setting the backend cannot work without; raises ProviderConfigurationError naming it."""
    try:
        return get_required_setting(name)
    except ImproperlyConfigured as err:
        raise ProviderConfigurationError(str(err), provider=provider) from err


class BaseSmsBackend:
    provider_name = "base"

    def open(self) -> bool:
        """Open a connection if there is none; True only when this call opened it."""
        return False

    def close(self) -> None:
        """Close the connection; safe to call when it is already closed."""

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send_messages(self, messages: Sequence[SmsMessage]) -> int:
        """Send each message in order; return how many were sent.

        Raises the first message's `CommunicationError` and stops there: the caller sends one
        delivery at a time, so it always knows which message failed. A connection this call
        opened is closed again; one opened by the caller (`with backend:`) is left open.
        """
        if not messages:
            return 0
        created = self.open()
        try:
            for message in messages:
                self._send(message)
        finally:
            if created:
                self.close()
        return len(messages)

    def _send(self, message: SmsMessage) -> None:
        """Send one message and set its `provider_message_id`, or raise CommunicationError."""
        raise NotImplementedError(f"{type(self).__name__} must implement _send()")


class HttpSmsBackend(BaseSmsBackend):
    """A provider with an HTTP API: one `requests.Session` per backend instance, with timeouts.

    Subclasses implement `build_request` and `parse_message_id`. Replies 2xx mean sent, 429 and
    5xx are transient (honouring `Retry-After`), any other status is permanent; connection
    errors and timeouts are transient.
    """

    def __init__(self) -> None:
        self.session: requests.Session | None = None
        self.timeout = float(get_setting("PROVIDER_TIMEOUT"))

    def open(self) -> bool:
        if self.session is not None:
            return False
        self.session = requests.Session()
        return True

    def close(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            session.close()

    def build_request(self, message: SmsMessage) -> dict[str, Any]:
        """Keyword arguments for `requests.Session.post` (at least `url`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement build_request()")

    def parse_message_id(self, response: requests.Response) -> str:
        """The provider's id for an accepted (2xx) message, '' if it gives none.

        May raise CommunicationError when a 2xx body says the message was refused.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement parse_message_id()")

    def _send(self, message: SmsMessage) -> None:
        created = self.open()
        try:
            response = self.post(**self.build_request(message))
        finally:
            if created:
                self.close()
        try:
            message.provider_message_id = self.parse_message_id(response)
        except ValueError:
            # The provider said 2xx, so the message went out; only its id is unreadable.
            message.provider_message_id = ""

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        """POST to the provider; return a 2xx response or raise CommunicationError."""
        if self.session is None:
            raise RuntimeError(f"{type(self).__name__}.post() needs open() first")
        kwargs.setdefault("timeout", self.timeout)
        # A redirect would turn the POST into a GET: treat it as a refusal, never as sent.
        kwargs.setdefault("allow_redirects", False)
        try:
            response = self.session.post(url, **kwargs)
        except requests.RequestException as err:
            raise CommunicationError(
                f"{self.provider_name}: {type(err).__name__}: {err}",
                provider=self.provider_name,
                retryable=True,
            ) from err
        if 200 <= response.status_code < 300:
            return response
        status = response.status_code
        raise http_status_error(
            f"{self.provider_name}: HTTP {status}: {response.text[:300]}",
            status=status,
            response=response,
            provider=self.provider_name,
        )
