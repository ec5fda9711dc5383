"""`GET /api/queue/workers/init` against a real Redis and real worker processes."""

import time

import pytest
from rest_framework.test import APIClient

from queue_status.selectors import CACHE_KEY, FRESH_KEY

URL = "/api/queue/workers/init"


@pytest.mark.slow
def test_a_worker_on_both_queues(service, api):
    service.start_worker(queues="email,sms")

    response = api.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["workers"] == {"email": True, "sms": True}
    # The worker's start-up sweeps may still be waiting in a queue.
    assert body["queues"].keys() == {"email", "sms"}
    assert all(0 <= queue["pending"] <= 1 for queue in body["queues"].values())


@pytest.mark.slow
def test_a_worker_on_one_queue(service, api):
    service.start_worker(queues="email")

    body = api.get(URL).json()

    assert body["workers"] == {"email": True, "sms": False}


def test_no_worker_and_queue_depths_of_every_priority(api, redis_server):
    client = redis_server.client()
    client.rpush("email", *[b"task"] * 3)
    client.rpush("email\x06\x163", b"task")  # kombu's list for priority step 3
    client.rpush("sms\x06\x169", *[b"task"] * 2)

    body = api.get(URL).json()

    assert body == {
        "success": True,
        "workers": {"email": False, "sms": False},
        "queues": {"email": {"pending": 4}, "sms": {"pending": 2}},
    }


def test_workers_are_cached_so_a_poll_is_fast(api, redis_server):
    api.get(URL)  # a cold cache waits for the broadcast
    assert redis_server.client().exists(CACHE_KEY, FRESH_KEY) == 2

    started = time.perf_counter()
    response = api.get(URL)
    elapsed = time.perf_counter() - started

    assert response.status_code == 200
    assert elapsed < 0.1, f"a cached poll took {elapsed:.3f}s"


def test_stale_workers_are_served_while_refreshed_in_the_background(api, redis_server):
    client = redis_server.client()
    client.set(CACHE_KEY, '[["w1@host", ["email"]]]')  # stale: no freshness marker

    body = api.get(URL).json()

    assert body["workers"] == {"email": True, "sms": False}
    deadline = time.monotonic() + 5
    while client.get(CACHE_KEY) != b"[]" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.get(CACHE_KEY) == b"[]"  # the refresh found no worker
    assert api.get(URL).json()["workers"] == {"email": False, "sms": False}


def test_redis_down_is_a_503(api, redis_server, settings):
    # As in production: the throttles' cache is in the same Redis.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_server.url,
        }
    }
    assert api.get(URL).status_code == 200
    redis_server.stop()
    try:
        response = api.get(URL)
    finally:
        redis_server.start()

    assert response.status_code == 503
    body = response.json()
    assert body["success"] is False
    assert "Redis" in body["error"]
    assert api.get(URL).status_code == 200  # and it recovers with Redis


@pytest.mark.django_db
def test_authentication_is_required():
    assert APIClient().get(URL).status_code in (401, 403)
