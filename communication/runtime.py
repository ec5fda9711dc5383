"""Runtime coordination of queued jobs, in Redis.

A job is sent by a few *lanes*: chains of batch tasks where each task sends one batch and
enqueues the next. Every lane has a token that each link hands to its successor; a redelivered
or superseded task carries a stale token and stops, so lanes never multiply. The lanes hash
expires when no link has run for `JOB_HEARTBEAT_TTL`, which tells the recovery sweep that the
job has nothing in flight.

Before each send, the delivery id is recorded under its batch's claim token. If the worker dies
before it records outcomes, recovery can tell "handed to the provider, outcome unknown" from
"never attempted" and never re-sends blindly.
"""

import uuid

import redis

_ADVANCE_LUA = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and current ~= ARGV[2] then return 0 end
if not current and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""

_END_LUA = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
"""

HANDED_TTL_SECONDS = 7 * 24 * 3600
CANCEL_TTL_SECONDS = 7 * 24 * 3600


def new_token() -> str:
    return uuid.uuid4().hex


class JobRuntime:
    def __init__(self, client: redis.Redis, heartbeat_ttl: float) -> None:
        self.client = client
        self.ttl_ms = int(heartbeat_ttl * 1000)
        self._advance = client.register_script(_ADVANCE_LUA)
        self._end = client.register_script(_END_LUA)

    @staticmethod
    def _lanes(job_id: object) -> str:
        return f"job:{job_id}:lanes"

    def start_lanes(self, job_id: object, count: int) -> list[str]:
        """Replace the job's lanes with `count` new ones; return their tokens (lane = index)."""
        tokens = [new_token() for _ in range(count)]
        pipe = self.client.pipeline()
        pipe.delete(self._lanes(job_id))
        pipe.hset(self._lanes(job_id), mapping={str(i): t for i, t in enumerate(tokens)})
        pipe.pexpire(self._lanes(job_id), self.ttl_ms)
        pipe.execute()
        return tokens

    def advance(self, job_id: object, lane: int, token: str) -> str | None:
        """Take the lane's turn: the successor's token, or None if `token` is stale.

        If Redis lost the lanes (restart, flush), the first link to arrive takes its lane over.
        """
        successor = new_token()
        ok = self._advance(
            keys=[self._lanes(job_id)], args=[str(lane), token, successor, self.ttl_ms]
        )
        return successor if ok else None

    def end_lane(self, job_id: object, lane: int, token: str) -> None:
        self._end(keys=[self._lanes(job_id)], args=[str(lane), token])

    def jobs_with_lanes(self, job_ids: list[object]) -> set[object]:
        pipe = self.client.pipeline()
        for job_id in job_ids:
            pipe.exists(self._lanes(job_id))
        return {job_id for job_id, alive in zip(job_ids, pipe.execute(), strict=True) if alive}

    def stop(self, job_id: object) -> None:
        """Cancel: drop the lanes and flag the job so batches in progress stop between sends."""
        pipe = self.client.pipeline()
        pipe.delete(self._lanes(job_id))
        pipe.set(f"job:{job_id}:cancelled", 1, ex=CANCEL_TTL_SECONDS)
        pipe.execute()

    def is_stopped(self, job_id: object) -> bool:
        return bool(self.client.exists(f"job:{job_id}:cancelled"))

    # --- deliveries handed to a provider, per claim ------------------------------------------

    @staticmethod
    def _handed(claim_token: object) -> str:
        return f"claim:{claim_token}:handed"

    def open_claim(self, claim_token: object) -> None:
        """Start the record of a claim; its absence later means the record was lost."""
        pipe = self.client.pipeline(transaction=False)
        pipe.rpush(self._handed(claim_token), 0)
        pipe.expire(self._handed(claim_token), HANDED_TTL_SECONDS)
        pipe.execute()

    def mark_handed(self, claim_token: object, *delivery_ids: int) -> bool:
        """Record hand-overs; False if the claim's record is gone (Redis lost its data)."""
        return bool(self.client.rpushx(self._handed(claim_token), *delivery_ids))

    def handed(self, claim_token: object) -> set[int] | None:
        """Deliveries of the claim handed to a provider; None if the record is gone."""
        if not self.client.exists(self._handed(claim_token)):
            return None
        return {int(x) for x in self.client.lrange(self._handed(claim_token), 0, -1)} - {0}

    def close_claim(self, claim_token: object) -> None:
        self.client.delete(self._handed(claim_token))
