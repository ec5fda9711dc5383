"""Lanes of queued jobs and their cancel flags, in Redis.

A job is sent by a few *lanes*: chains of batch tasks where each task sends one batch and
enqueues the next. Every lane has a token that each link hands to its successor; a redelivered
or superseded task carries a stale token and stops, so lanes never multiply.

Each lane also names its *holder*: the process running its link, the worker that received the
link from the broker (reserved, or waiting for its countdown), or `queued` while the link is in
the broker. A lane whose holder is dead (see `liveness`) has lost its link, and the recovery sweep
replaces it within seconds. The lanes hash also expires when no link has touched it for
`JOB_HEARTBEAT_TTL`, the backstop for a link lost in the broker.
"""

import uuid

import redis

QUEUED = "queued"
CANCEL_TTL_SECONDS = 7 * 24 * 3600

# KEYS[1]: the lanes hash. ARGV: lane, the caller's token, the successor's token ("": keep the
# token, which must then be current), new holder, expected holder ("": any), ttl ms. A successor
# may take over a lane that Redis lost; a mere change of holder never recreates one.
_MOVE_LUA = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[3] == '' then
  if current ~= ARGV[2] then return 0 end
else
  if current and current ~= ARGV[2] then return 0 end
  if not current and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
end
local holder_field = ARGV[1] .. ':holder'
if ARGV[5] ~= '' and redis.call('HGET', KEYS[1], holder_field) ~= ARGV[5] then return 0 end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
redis.call('HSET', KEYS[1], holder_field, ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
"""

_END_LUA = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1], ARGV[1] .. ':holder')
  return 1
end
return 0
"""


def new_token() -> str:
    return uuid.uuid4().hex


def cancel_key(job_id: object) -> str:
    return f"job:{job_id}:cancelled"


class JobRuntime:
    def __init__(self, client: redis.Redis, heartbeat_ttl: float) -> None:
        self.client = client
        self.ttl_ms = int(heartbeat_ttl * 1000)
        self._move = client.register_script(_MOVE_LUA)
        self._end = client.register_script(_END_LUA)

    @staticmethod
    def _lanes(job_id: object) -> str:
        return f"job:{job_id}:lanes"

    def start_lanes(self, job_id: object, count: int) -> list[str]:
        """Replace the job's lanes with `count` new ones; return their tokens (lane = index)."""
        tokens = [new_token() for _ in range(count)]
        mapping = {str(i): t for i, t in enumerate(tokens)}
        mapping.update({f"{i}:holder": QUEUED for i in range(count)})
        pipe = self.client.pipeline()
        pipe.delete(self._lanes(job_id))
        pipe.hset(self._lanes(job_id), mapping=mapping)
        pipe.pexpire(self._lanes(job_id), self.ttl_ms)
        pipe.execute()
        return tokens

    def advance(self, job_id: object, lane: int, token: str, holder: str) -> str | None:
        """Take the lane's turn in `holder`: the successor's token, or None if `token` is stale.

        If Redis lost the lanes (restart, flush), the first link to arrive takes its lane over.
        """
        successor = new_token()
        ok = self._move(
            keys=[self._lanes(job_id)], args=[str(lane), token, successor, holder, "", self.ttl_ms]
        )
        return successor if ok else None

    def receive(self, job_id: object, lane: int, token: str, holder: str) -> None:
        """A worker received the lane's link from the broker: it holds the lane now."""
        self._move(keys=[self._lanes(job_id)], args=[str(lane), token, "", holder, "", self.ttl_ms])

    def enqueued(self, job_id: object, lane: int, token: str, holder: str) -> None:
        """The successor link is in the broker: unless a worker received it already."""
        self._move(
            keys=[self._lanes(job_id)], args=[str(lane), token, "", QUEUED, holder, self.ttl_ms]
        )

    def end_lane(self, job_id: object, lane: int, token: str) -> None:
        self._end(keys=[self._lanes(job_id)], args=[str(lane), token])

    def lane_holders(self, job_ids: list[object]) -> dict[object, set[str]]:
        """The holders of each job's lanes (`queued` included); jobs without lanes are absent."""
        pipe = self.client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(self._lanes(job_id))
        holders: dict[object, set[str]] = {}
        for job_id, lanes in zip(job_ids, pipe.execute(), strict=True):
            if lanes:
                holders[job_id] = {
                    value.decode() for name, value in lanes.items() if name.endswith(b":holder")
                }
        return holders

    def stop(self, job_id: object) -> None:
        """Cancel: drop the lanes and flag the job, so that no send starts from now on."""
        pipe = self.client.pipeline()
        pipe.delete(self._lanes(job_id))
        pipe.set(cancel_key(job_id), 1, ex=CANCEL_TTL_SECONDS)
        pipe.execute()
