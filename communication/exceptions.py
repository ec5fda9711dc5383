"""One exception tree for the service: provider errors carry whether a retry may help."""

from typing import Any

from django.core.exceptions import ImproperlyConfigured


class CommunicationError(Exception):
    """A provider refused or failed a send.

    `retryable` says whether the same send may succeed later (timeouts, 4xx SMTP replies,
    HTTP 429/5xx); `retry_after` carries a provider's `Retry-After` in seconds when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status_code: int | None = None,
        response: Any = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status_code = status_code
        self.response = response
        self.retryable = retryable
        self.retry_after = retry_after


class ProviderConfigurationError(CommunicationError, ImproperlyConfigured):
    """A backend is missing credentials or a URL."""


class RecipientsRefused(CommunicationError):
    """The provider refused the recipient itself (bad address, unknown number)."""


class RateLimiterUnavailable(Exception):
    """The shared limiter cannot be reached, so nothing may be sent."""


class ApplicationError(Exception):
    """A domain rule was broken by the request; rendered as a 4xx JSON error."""

    def __init__(self, message: str, extra: dict[str, Any] | None = None, status: int = 400):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
        self.status = status
