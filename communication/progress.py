"""Live progress counters of running jobs, in Redis.

The delivery rows are the truth; these counters follow them so that a progress poll costs one
Redis round trip instead of a count over 100,000 rows. Counters are created once when a job is
dispatched and only ever moved atomically (a pair of counts per transition, so their sum stays the
job's total). If Redis loses them, `move` does nothing and readers fall back to the database.
"""

import contextlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import redis

from . import liveness
from .models import DeliveryStatus

COUNTERS = ("pending", "active", "completed", "failed", "cancelled", "unknown")

COUNTER_OF_STATUS = {
    DeliveryStatus.PENDING: "pending",
    DeliveryStatus.SENDING: "active",
    DeliveryStatus.RETRY: "active",
    DeliveryStatus.SENT: "completed",
    DeliveryStatus.FAILED: "failed",
    DeliveryStatus.CANCELLED: "cancelled",
    DeliveryStatus.UNKNOWN: "unknown",
}

KEY_TTL_SECONDS = 14 * 24 * 3600

_MOVE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
"""


@dataclass(frozen=True)
class JobCounts:
    pending: int = 0
    active: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    unknown: int = 0

    @classmethod
    def from_statuses(cls, by_status: Mapping[str, int]) -> "JobCounts":
        counts: Counter[str] = Counter()
        for status, count in by_status.items():
            counts[COUNTER_OF_STATUS[DeliveryStatus(status)]] += count
        return cls(**counts)

    @property
    def total(self) -> int:
        return sum(asdict(self).values())

    @property
    def percent(self) -> float:
        if not self.total:
            return 100.0
        return round((self.total - self.active - self.pending) / self.total * 100, 2)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def status_changes(transitions: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Counter deltas for delivery status transitions `(old, new)`."""
    deltas: Counter[str] = Counter()
    for old, new in transitions:
        deltas[COUNTER_OF_STATUS[DeliveryStatus(old)]] -= 1
        deltas[COUNTER_OF_STATUS[DeliveryStatus(new)]] += 1
    return {name: delta for name, delta in deltas.items() if delta}


class ProgressStore:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._move = client.register_script(_MOVE_LUA)

    @staticmethod
    def key(job_id: object) -> str:
        return f"job:{job_id}:progress"

    def seed(self, job_id: object, counts: JobCounts) -> None:
        """Set the counters from the database's counts (on dispatch and after retry-failed)."""
        pipe = self.client.pipeline()
        pipe.hset(self.key(job_id), mapping=counts.as_dict())
        pipe.expire(self.key(job_id), KEY_TTL_SECONDS)
        pipe.execute()

    def move(self, job_id: object, deltas: Mapping[str, int]) -> None:
        """Apply counter deltas atomically; a no-op when the counters are gone."""
        if not deltas:
            return
        args: list[str | int] = []
        for name, delta in deltas.items():
            args += [name, delta]
        try:
            self._move(keys=[self.key(job_id)], args=args)
        except redis.RedisError:
            # A lost move would leave the counters wrong for good: drop them, now or as soon as
            # Redis answers again, so that readers count the rows (the truth) instead.
            try:
                self.client.delete(self.key(job_id))
            except redis.RedisError:
                liveness.defer(lambda: self.client.delete(self.key(job_id)))

    def get(self, job_id: object) -> JobCounts | None:
        """The live counters, or None when Redis has none (or cannot be reached)."""
        try:
            raw = self.client.hgetall(self.key(job_id))
        except redis.RedisError:
            return None
        if not raw:
            return None
        return JobCounts(**{k.decode(): int(v) for k, v in raw.items() if k.decode() in COUNTERS})

    def delete(self, job_id: object) -> None:
        with contextlib.suppress(redis.RedisError):
            self.client.delete(self.key(job_id))
