"""Hand-over records: which deliveries of a claim were handed to the provider, in Redis.

A claim's record is a list whose head names the claim's owner (a process, see `liveness`) and
whose other items are the delivery ids handed to the provider. It is opened before any row is
claimed, and a delivery id is pushed before its send starts — in the same atomic call that
checks the job's cancel flag, so that no send starts once a cancel has been flagged. The same
call confirms the sends the provider accepted since the previous one (outcomes reach the
database once per batch): a worker that dies mid-batch leaves only its last send in doubt.

Recovery *takes* a record atomically (renaming it), so from that moment the owner's next
hand-over fails and it stops: whatever recovery read is exactly what may have been sent, and a
recipient it gives back to the queue can never also be sent by the old owner.
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import redis
from redis.client import Pipeline

from .runtime import cancel_key

RECORD_TTL_SECONDS = 7 * 24 * 3600

HANDED, LOST, CANCELLED = 1, 0, -1
SENT = "sent "  # prefix of a confirmation in the record

_HAND_OVER_LUA = """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
if redis.call('RPUSHX', KEYS[1], unpack(ARGV)) > 0 then return 1 end
return 0
"""

# KEYS: record, taken record, the owner's liveness key (or ""). ARGV[1]: "1" to take the record
# only if the owner is dead. Returns {state, items...}: state "alive", "lost" or "taken".
_TAKE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  if ARGV[1] == '1' then
    if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[2] then return {'alive'} end
    if redis.call('EXISTS', KEYS[3]) == 1 then return {'alive'} end
  end
  redis.call('RENAME', KEYS[1], KEYS[2])
end
if redis.call('EXISTS', KEYS[2]) == 0 then return {'lost'} end
local items = redis.call('LRANGE', KEYS[2], 0, -1)
table.insert(items, 1, 'taken')
return items
"""


@dataclass(frozen=True)
class Confirmed:
    """A send the provider accepted, with the provider's message id."""

    delivery_id: int
    provider: str
    message_id: str


@dataclass
class Record:
    handed: set[int] = field(default_factory=set)
    sent: dict[int, Confirmed] = field(default_factory=dict)


def _record(claim_token: object) -> str:
    return f"claim:{claim_token}:handed"


def _taken(claim_token: object) -> str:
    return f"claim:{claim_token}:taken"


class HandOvers:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._hand_over = client.register_script(_HAND_OVER_LUA)
        self._take = client.register_script(_TAKE_LUA)

    def open(self, claim_token: object, owner: str) -> None:
        """Start the record of a claim held by `owner`; its absence later means it was lost."""
        pipe = self.client.pipeline(transaction=False)
        pipe.rpush(_record(claim_token), owner)
        pipe.expire(_record(claim_token), RECORD_TTL_SECONDS)
        pipe.execute()

    def hand_over(
        self,
        claim_token: object,
        job_id: object,
        delivery_ids: list[int],
        *,
        confirmed: Sequence[Confirmed] = (),
        also: Callable[[Pipeline], object] | None = None,
    ) -> int:
        """Record hand-overs, after the `confirmed` sends: HANDED, LOST (the record is gone or
        was taken) or CANCELLED. `also` adds commands to the same round trip (the batch gate)."""
        pipe = self.client.pipeline(transaction=False)
        keys = [_record(claim_token), cancel_key(job_id)]
        items = [SENT + json.dumps([c.delivery_id, c.provider, c.message_id]) for c in confirmed]
        self._hand_over(keys=keys, args=[*items, *delivery_ids], client=pipe)
        if also is not None:
            also(pipe)
        return int(pipe.execute()[0])

    def owner(self, claim_token: object) -> str | None:
        value = self.client.lindex(_record(claim_token), 0)
        return value.decode() if value is not None else None

    def take(
        self, claim_token: object, *, unless_alive: str | None = None, alive_key: str = ""
    ) -> Record | None:
        """Take the record: what was handed over and confirmed, or None if it was lost.

        With `unless_alive`, take it only if that is still the owner and `alive_key` is gone;
        otherwise raise `OwnerAlive`. Taking twice returns the same record.
        """
        keys = [_record(claim_token), _taken(claim_token), alive_key or _record(claim_token)]
        args = ["1" if unless_alive else "0", unless_alive or ""]
        state, *items = self._take(keys=keys, args=args)
        if state == b"alive":
            raise OwnerAlive(claim_token)
        if state == b"lost":
            return None
        record = Record()
        for item in items[1:]:  # items[0] names the owner
            if item.startswith(SENT.encode()):
                confirmed = Confirmed(*json.loads(item[len(SENT) :]))
                record.sent[confirmed.delivery_id] = confirmed
            else:
                record.handed.add(int(item))
        return record

    def close(self, claim_token: object) -> None:
        self.client.delete(_record(claim_token), _taken(claim_token))


class OwnerAlive(Exception):
    """The claim's owner is alive: its record was not taken."""
