"""The SMS backend contract, shaped like Django's email backends.

`open()` returns True only when it created the connection, `close()` may be called twice,
`send_messages()` returns how many were sent and `with backend:` opens and closes. A failed send
raises a `CommunicationError` that says whether a retry may help; the loop lives here and the
vendors fill in hooks.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Self

import requests
from django.utils import timezone

from ...conf import get_setting
from ...exceptions import CommunicationError


@dataclass
class SmsMessage:
    to: str  # E.164, e.g. +233241234567
    body: str
    from_: str = ""
    reference: str = ""  # our id for the message: lets a provider de-duplicate a re-send
    provider_message_id: str = ""  # set by the backend once the provider accepted the message

    def __post_init__(self) -> None:
        self.from_ = self.from_ or get_setting("SMS_SENDER_ID")


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
        """Send each message; return how many were sent. Raises CommunicationError on failure."""
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
    5xx are transient (honouring `Retry-After`), any other 4xx is permanent.
    """

    def __init__(self) -> None:
        self.session: requests.Session | None = None
        self.timeout = get_setting("PROVIDER_TIMEOUT")

    def open(self) -> bool:
        if self.session is not None:
            return False
        self.session = requests.Session()
        return True

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None

    def build_request(self, message: SmsMessage) -> dict[str, Any]:
        """Keyword arguments for `requests.Session.post` (at least `url`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement build_request()")

    def parse_message_id(self, response: requests.Response) -> str:
        """The provider's id for an accepted message ('' if it gives none)."""
        raise NotImplementedError(f"{type(self).__name__} must implement parse_message_id()")

    def _send(self, message: SmsMessage) -> None:
        created = self.open()
        try:
            response = self.post(**self.build_request(message))
        finally:
            if created:
                self.close()
        message.provider_message_id = self.parse_message_id(response)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        assert self.session is not None
        try:
            response = self.session.post(url, timeout=self.timeout, **kwargs)
        except requests.RequestException as err:
            raise CommunicationError(
                f"{self.provider_name}: {type(err).__name__}: {err}",
                provider=self.provider_name,
                retryable=True,
            ) from err
        if response.ok:
            return response
        status = response.status_code
        raise CommunicationError(
            f"{self.provider_name}: HTTP {status}: {response.text[:300]}",
            provider=self.provider_name,
            status_code=status,
            response=response,
            retryable=status == 429 or status >= 500,
            retry_after=_retry_after(response),
        )


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - timezone.now()).total_seconds(), 0.0)
