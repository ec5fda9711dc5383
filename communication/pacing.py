"""The pause between a job's batches, shared by all of the job's lanes.

SPEC §2: `<CHANNEL>_BATCH_DELAY` is a pause between *a job's* batches, so however many lanes a
job has, a batch may start only once the job's "next batch not before" time has passed, on
Redis's clock. A batch entering the gate shuts it, then moves that time while it runs — at every
hand-over, to the next send's slot plus the delay — and on leaving sets it to the batch's end plus
the delay. A lane that finds the gate closed waits until it opens. A holder that dies stops
pushing, so the gate opens by itself a pause after its last send.
"""

import redis
from redis.client import Pipeline

# The gate's value is "<not before, ms on Redis's clock> <batch that set it>".
_NOW = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local value = redis.call('GET', KEYS[1]) or '0 -'
local space = string.find(value, ' ')
local gate, holder = tonumber(string.sub(value, 1, space - 1)), string.sub(value, space + 1)
"""

# ARGV: batch id, hold ms (how far ahead the entering batch shuts the gate), key ttl ms.
_ENTER_LUA = (
    _NOW
    + """
if now < gate then return gate - now end
redis.call('SET', KEYS[1], (now + tonumber(ARGV[2])) .. ' ' .. ARGV[1], 'PX', ARGV[3])
return 0
"""
)

# ARGV: batch id, ms from now before which no other batch may start, key ttl ms. The batch
# holding the gate moves it either way; a batch that lost it (its hold ran out) only pushes.
_PUSH_LUA = (
    _NOW
    + """
local at = now + tonumber(ARGV[2])
if holder == ARGV[1] or at > gate then
  redis.call('SET', KEYS[1], at .. ' ' .. ARGV[1], 'PX', ARGV[3])
end
return 0
"""
)

KEY_TTL_MS = 3600 * 1000


def gate_key(job_id: object) -> str:
    return f"job:{job_id}:next_batch"


class BatchGate:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._enter = client.register_script(_ENTER_LUA)
        self._push = client.register_script(_PUSH_LUA)

    def enter(self, job_id: object, batch: str, hold: float) -> float:
        """Let `batch` start now (0.0, the gate shut for `hold` seconds), or the seconds until
        the job's next batch may start."""
        args = [batch, int(hold * 1000), KEY_TTL_MS]
        return int(self._enter(keys=[gate_key(job_id)], args=args)) / 1000

    def push(
        self, job_id: object, batch: str, seconds: float, client: Pipeline | None = None
    ) -> None:
        """No other batch of the job starts within `seconds` from now (on `client`: a
        pipeline to send it with)."""
        args = [batch, int(seconds * 1000), KEY_TTL_MS]
        self._push(keys=[gate_key(job_id)], args=args, client=client)

    def open(self, job_id: object) -> None:
        """The batch that entered had nothing to send: let the next one start at once."""
        self.client.delete(gate_key(job_id))
