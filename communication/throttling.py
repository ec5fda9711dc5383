"""Per-user API throttles that fail open when the shared cache (Redis) is unreachable.

Throttling protects the service; it must not turn a Redis outage into 500s on every endpoint.
Sending itself still stops without Redis (the rate limiter fails closed).
"""

import logging
from typing import Any

import redis
from rest_framework import throttling

logger = logging.getLogger(__name__)


class _FailOpen:
    def allow_request(self, request: Any, view: Any) -> bool:
        try:
            return super().allow_request(request, view)  # type: ignore[misc]
        except redis.RedisError as err:
            logger.warning("throttle cache unreachable, request let through: %s", err)
            return True


class UserRateThrottle(_FailOpen, throttling.UserRateThrottle):
    pass


class ScopedRateThrottle(_FailOpen, throttling.ScopedRateThrottle):
    pass
