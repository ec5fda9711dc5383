"""A circuit breaker per channel and provider, shared by every worker through Redis.

After `CIRCUIT_BREAKER_THRESHOLD` consecutive transient failures, the channel pauses for
`CIRCUIT_BREAKER_COOLDOWN` seconds (through the rate limiter, so no worker sends) instead of
burning every recipient's retries on a provider that is down. The first send after the pause is
the probe: a failure opens the circuit again at once, a successful batch closes it.
"""

import redis
from django.utils import timezone

FAILURES_TTL_SECONDS = 300


class CircuitBreaker:
    def __init__(self, client: redis.Redis, key: str, threshold: int, cooldown: float) -> None:
        self.client = client
        self.failures_key = f"{key}:failures"
        self.open_key = f"{key}:open"
        self.threshold = threshold
        self.cooldown = cooldown

    def record_failure(self, reason: str, count: int = 1) -> int:
        """Count `count` transient failures; how many in a row when that opens the circuit
        (0 while it stays closed)."""
        pipe = self.client.pipeline()
        pipe.incrby(self.failures_key, count)
        pipe.expire(self.failures_key, FAILURES_TTL_SECONDS)
        failures, _ = pipe.execute()
        if failures < self.threshold:
            return 0
        until = timezone.now() + timezone.timedelta(seconds=self.cooldown)
        value = f"{until.isoformat()}|{failures} consecutive failures, last: {reason[:200]}"
        self.client.set(self.open_key, value, px=int(self.cooldown * 1000))
        return failures

    def record_success(self) -> None:
        self.client.delete(self.failures_key)

    def status(self) -> tuple[str, str] | None:
        """(paused until, ISO 8601; reason) while the circuit is open, else None."""
        value = self.client.get(self.open_key)
        if not value:
            return None
        until, _, reason = value.decode().partition("|")
        return until, reason
