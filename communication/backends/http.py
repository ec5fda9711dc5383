"""How an HTTP provider's answer maps onto the service's retry rules (SPEC §4, §6).

One place for every HTTP provider, SMS backends and anymail's email backends alike: 429 and
5xx are transient, honouring `Retry-After`; any other status is permanent.
"""

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from ..exceptions import CommunicationError


def is_transient_status(status: int) -> bool:
    return status == 429 or status >= 500


def http_status_error(
    message: str, *, status: int, response: Any, provider: str
) -> CommunicationError:
    """The error for a non-2xx answer; `response` (a `requests` response or None) gives the
    headers."""
    headers = getattr(response, "headers", None) or {}
    return CommunicationError(
        message,
        provider=provider,
        status_code=status,
        response=response,
        retryable=is_transient_status(status),
        retry_after=retry_after_seconds(headers.get("Retry-After")),
    )


_DELAY_SECONDS = re.compile(r"\s*(\d+)\s*")


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP-date (RFC 9110).

    None when the header is absent or unreadable; a date in the past gives 0.
    """
    if not value:
        return None
    if match := _DELAY_SECONDS.fullmatch(value):
        return float(match[1])
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with no zone information
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max((when - now).total_seconds(), 0.0)
