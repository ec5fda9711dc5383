"""Which processes are alive: one short-lived Redis key per process, kept fresh by a thread.

Every claim on delivery rows and every link of a lane names the process that holds it (its
*owner*). A process refreshes `alive:<owner>` every `REFRESH_INTERVAL` seconds with an expiry of
`LIVENESS_TTL`, so the recovery sweep can tell within seconds that a holder is gone (SIGKILL, a
machine lost) instead of waiting for a lease to run out.

Absence only means death once every live process has had the time to write its key again
after Redis lost its data (a restart without persistence, FLUSHALL) or restarted (kept records
may have expired meanwhile): `trustworthy()` is false for `SETTLE` seconds after either, and the
sweep falls back to leases alone. Even a wrong
verdict cannot cause a duplicate: recovery takes a claim's hand-over record atomically, so the
holder's next hand-over fails and it stops (see `handovers`).

The same thread runs *deferred* Redis writes: clean-ups that a process could not make while Redis
was down (dropping progress counters that missed a move, ending a lane that lost its successor)
are made as soon as Redis answers again, so a living process never leaves stale state behind.
"""

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

logger = logging.getLogger(__name__)

# A dead process is known within LIVENESS_TTL; a living one refreshes its record four times
# within that, so a slow moment never makes it look dead.
LIVENESS_TTL = 6.0
REFRESH_INTERVAL = 1.5
# After Redis lost or aged the records, every living process writes its own again within one
# refresh; two refreshes later a missing record means a dead process again.
SETTLE = 2 * REFRESH_INTERVAL
EPOCH_KEY = "alive:epoch"

RedisFactory = Callable[[], redis.Redis]


def alive_key(owner: str) -> str:
    return f"alive:{owner}"


class Liveness:
    """Reads and writes of the liveness keys."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def beat(self, *owners: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        for owner in owners:
            pipe.set(alive_key(owner), 1, px=int(LIVENESS_TTL * 1000))
        # When the liveness keys started to be written: reset whenever Redis lost its data.
        pipe.set(EPOCH_KEY, int(time.time()), nx=True)
        pipe.execute()

    def forget(self, owner: str) -> None:
        self.client.delete(alive_key(owner))

    def alive(self, owners: set[str]) -> set[str]:
        """The owners among `owners` whose key exists."""
        ordered = sorted(owners)
        pipe = self.client.pipeline(transaction=False)
        for owner in ordered:
            pipe.exists(alive_key(owner))
        return {owner for owner, found in zip(ordered, pipe.execute(), strict=True) if found}

    def trustworthy(self) -> bool:
        """True when a missing key means a dead process (see the module docstring)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(EPOCH_KEY)
        pipe.time()
        epoch, (now, _) = pipe.execute()
        if epoch is None or now - int(epoch) < SETTLE:
            return False
        try:
            # Records kept across a restart may have expired while Redis was down.
            return self.client.info("server")["uptime_in_seconds"] >= SETTLE
        except redis.ResponseError:  # INFO disabled (some managed Redis): the epoch must do
            return True


@dataclass
class _ProcessState:
    pid: int
    owners: list[str]
    redis_factory: RedisFactory
    deferred: list[Callable[[], None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


_state: _ProcessState | None = None
_state_lock = threading.Lock()


def _new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def process_owner(redis_factory: RedisFactory) -> str:
    """This process's owner id; the first call in a process starts its heartbeat thread."""
    return _process_state(redis_factory).owners[-1]


def rotate_owner(redis_factory: RedisFactory) -> str:
    """Give this process a new owner id and let the old one die at once.

    The worker's consumer calls this when its broker connection is re-established: the links
    it had received but not started were dropped with the old connection, so lanes that name the
    old id must look dead to the sweep.
    """
    state = _process_state(redis_factory)
    with state.lock:
        old, new = state.owners[-1], _new_owner()
        state.owners = [new]
    try:
        Liveness(redis_factory()).forget(old)
        Liveness(redis_factory()).beat(new)
    except redis.RedisError:
        defer(lambda: Liveness(redis_factory()).forget(old))
    return new


def defer(action: Callable[[], None]) -> None:
    """Run the Redis write `action` from the heartbeat thread once Redis answers again."""
    if _state is None:
        logger.warning("no heartbeat in this process; a deferred clean-up is dropped")
        return
    with _state.lock:
        _state.deferred.append(action)


def _process_state(redis_factory: RedisFactory) -> _ProcessState:
    global _state
    with _state_lock:
        if _state is None or _state.pid != os.getpid():  # new, or inherited through fork
            _state = _ProcessState(os.getpid(), [_new_owner()], redis_factory)
            _beat_once(_state)
            threading.Thread(
                target=_heartbeat, args=(_state,), name="liveness", daemon=True
            ).start()
        return _state


def _heartbeat(state: _ProcessState) -> None:
    while _state is state:
        time.sleep(REFRESH_INTERVAL)
        if _beat_once(state):
            _run_deferred(state)


def _beat_once(state: _ProcessState) -> bool:
    try:
        Liveness(state.redis_factory()).beat(*state.owners)
        return True
    except redis.RedisError as err:
        logger.debug("liveness: Redis unavailable: %s", err)
        return False
    except Exception:  # the heartbeat must outlive any surprise, or the process looks dead
        logger.exception("liveness: heartbeat failed")
        return False


def _run_deferred(state: _ProcessState) -> None:
    with state.lock:
        actions, state.deferred = state.deferred, []
    for position, action in enumerate(actions):
        try:
            action()
        except redis.RedisError:
            with state.lock:
                state.deferred[:0] = actions[position:]
            return
        except Exception:
            logger.exception("liveness: a deferred clean-up failed")
