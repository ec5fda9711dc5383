"""The shared limiter against a real Redis: spacing, windows, batches, pauses, outages."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from communication.exceptions import RateLimiterUnavailable
from communication.rate_limit import RateLimiter, Rule, parse_rules

from ..servers import max_in_window


@pytest.fixture
def client(redis_server):
    return redis_server.client()


def limiter(client, rules: str, margin: float = 0.0) -> RateLimiter:
    return RateLimiter("test", parse_rules(rules), client, margin=margin)


@pytest.mark.parametrize(
    ("text", "rules"),
    [
        ("5/s", [Rule(5, 1)]),
        ("5/s;10000/d", [Rule(5, 1), Rule(10000, 86400)]),
        (" 100/10s ; 30/minute ", [Rule(100, 10), Rule(30, 60)]),
        ("2/h", [Rule(2, 3600)]),
    ],
)
def test_parse_rules(text, rules):
    assert parse_rules(text) == rules


@pytest.mark.parametrize("text", ["", "5", "five/s", "5/y", "0/s", "5/s;x"])
def test_parse_rules_refuses_nonsense(text):
    with pytest.raises(ValueError):
        parse_rules(text)


def test_slots_are_evenly_spaced_within_the_horizon(client):
    reservation = limiter(client, "10/s").reserve(50, horizon=1.0)
    assert len(reservation.slots) == 10
    gaps = {round(b - a, 4) for a, b in zip(reservation.slots, reservation.slots[1:], strict=False)}
    assert gaps == {0.1}


def test_the_margin_widens_the_spacing(client):
    reservation = limiter(client, "10/s", margin=0.05).reserve(3, horizon=1.0)
    assert round(reservation.slots[1] - reservation.slots[0], 4) == 0.105


def test_reservations_share_one_schedule(client):
    first = limiter(client, "10/s").reserve(5, horizon=1.0)
    second = limiter(client, "10/s").reserve(5, horizon=1.0)
    assert round(second.slots[0] - first.slots[-1], 2) == 0.1


def test_nothing_beyond_the_horizon_and_the_wait_says_when(client):
    limit = limiter(client, "2/s")
    assert len(limit.reserve(10, horizon=1.0).slots) == 2
    refused = limit.reserve(1, horizon=0.0)
    assert refused.slots == [] and 0.9 < refused.wait <= 1.01


def test_all_or_nothing(client):
    limit = limiter(client, "5/s")
    assert limit.reserve(10, horizon=1.0, all_or_nothing=True).slots == []
    assert len(limit.reserve(5, horizon=1.0, all_or_nothing=True).slots) == 5


def test_a_quota_window_caps_the_total(client):
    limit = limiter(client, "1000/s;7/h")
    assert len(limit.reserve(5, horizon=1.0).slots) == 5
    assert len(limit.reserve(5, horizon=1.0).slots) == 2
    refused = limit.reserve(1, horizon=1.0)
    assert refused.slots == [] and 3500 < refused.wait <= 3700


def test_a_quota_alone_does_not_space_sends(client):
    reservation = limiter(client, "100/d").reserve(10, horizon=1.0)
    assert len(reservation.slots) == 10 and reservation.slots[-1] - reservation.slots[0] < 0.01


def test_pause_holds_every_reservation(client):
    limit = limiter(client, "100/s")
    limit.pause(2.0)
    refused = limiter(client, "100/s").reserve(1, horizon=1.0)
    assert refused.slots == [] and 1.9 < refused.wait <= 2.0


def test_concurrent_reservers_never_exceed_the_limit(client):
    limit = limiter(client, "20/s", margin=0.05)
    sends: list[float] = []

    def reserve_and_wait(_: int) -> None:  # as the sender does: skip a slot it woke late for
        for _ in range(4):
            reservation = limit.reserve(3, horizon=1.0)
            for slot in reservation.slots:
                time.sleep(max(0.0, slot - time.monotonic()))  # the pacing being tested
                if not reservation.is_late(slot):
                    sends.append(time.monotonic())
            time.sleep(reservation.wait)  # as the limiter says, before reserving again

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(reserve_and_wait, range(8)))
    assert max_in_window(sends, 1.0) <= 20
    assert len(sends) >= 50


def test_redis_down_means_no_slots(redis_server):
    dead = redis.Redis(port=redis_server.port + 1 if redis_server.port < 65535 else 1)
    with pytest.raises(RateLimiterUnavailable):
        limiter(dead, "5/s").reserve(1, horizon=1.0)
