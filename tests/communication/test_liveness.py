"""Liveness records and the clean-ups a process defers while Redis is away, on a real Redis."""

from communication import liveness
from communication.progress import JobCounts
from communication.stores import get_liveness, get_progress_store, get_redis, process_owner

from ..servers import wait_until


def test_a_new_owner_id_lets_the_old_one_die_at_once():
    old = process_owner()
    get_liveness().beat(old)

    new = liveness.rotate_owner(get_redis)

    assert new != old and process_owner() == new
    assert get_liveness().alive({old, new}) == {new}


def test_the_heartbeat_keeps_the_record_alive():
    owner = process_owner()
    get_redis().delete(liveness.alive_key(owner))
    wait_until(
        lambda: get_liveness().alive({owner}) == {owner},
        liveness.REFRESH_INTERVAL * 2,
        what="the heartbeat",
    )


def test_counters_that_missed_a_move_are_dropped_once_redis_is_back(redis_server):
    """Progress falls back to the rows rather than showing counters that are wrong for good."""
    store = get_progress_store()
    store.seed("job-1", JobCounts(pending=3))
    process_owner()  # this process's heartbeat makes the deferred writes

    redis_server.stop(keep_data=True)
    store.move("job-1", {"pending": -1, "active": 1})
    redis_server.start()

    wait_until(lambda: store.get("job-1") is None, 10, what="the stale counters to go")
