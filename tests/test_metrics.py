"""`/metrics`: counters kept in the shared Redis, read back in the Prometheus text format."""

import io
import json
import logging
from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from communication import metrics
from communication.logging import ContextFilter, JsonFormatter, log_context
from communication.stores import get_redis

from .test_security import redis_cache  # noqa: F401  (throttle cache in the private Redis)


def scrape(client: Any = None, **headers: str) -> dict[tuple[str, tuple], float]:
    response = (client or Client()).get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_outcomes_are_counted_per_channel_and_provider(db):
    metrics.record_outcomes("email", "smtp", [("sent", 8), ("failed", 1), ("retry", 2)])
    metrics.record_outcomes("email", "smtp", [("sent", 2), ("unknown", 0)])
    metrics.record_outcomes("sms", "webhook", [("sent", 3), ("unknown", 1)])

    samples = scrape()

    assert samples[("messaging_sent_total", (("channel", "email"), ("provider", "smtp")))] == 10
    assert samples[("messaging_failed_total", (("channel", "email"), ("provider", "smtp")))] == 1
    assert samples[("messaging_retried_total", (("channel", "email"), ("provider", "smtp")))] == 2
    assert samples[("messaging_sent_total", (("channel", "sms"), ("provider", "webhook")))] == 3
    assert samples[("messaging_unknown_total", (("channel", "sms"), ("provider", "webhook")))] == 1


def test_histograms_of_rate_limit_waits_and_job_durations(db):
    metrics.record_rate_limit_wait("email", 0.2)
    metrics.record_rate_limit_wait("email", 3.0)
    metrics.record_job_finished("sms", "completed", 42.0)
    metrics.record_job_finished("sms", "completed", 7200.0)
    metrics.record_job_finished("sms", "completed_with_errors", 2.0)

    samples = scrape()

    wait = (("channel", "email"),)
    assert samples[("messaging_rate_limit_wait_seconds_count", wait)] == 2
    assert samples[("messaging_rate_limit_wait_seconds_sum", wait)] == pytest.approx(3.2)
    assert samples[("messaging_rate_limit_wait_seconds_bucket", (*wait, ("le", "0.25")))] == 1
    assert samples[("messaging_rate_limit_wait_seconds_bucket", (*wait, ("le", "5.0")))] == 2
    done = (("channel", "sms"), ("status", "completed"))
    assert samples[("messaging_job_duration_seconds_count", done)] == 2
    bucket = "messaging_job_duration_seconds_bucket"
    assert samples[(bucket, (("channel", "sms"), ("le", "60.0"), ("status", "completed")))] == 1
    assert samples[(bucket, (("channel", "sms"), ("le", "+Inf"), ("status", "completed")))] == 2
    errors = (("channel", "sms"), ("status", "completed_with_errors"))
    assert samples[("messaging_job_duration_seconds_sum", errors)] == 2.0


def test_queue_depth_is_read_at_scrape_time(db, redis_server):
    redis = redis_server.client()
    redis.lpush("email", "a", "b", "c")
    redis.lpush("email\x06\x163", "d")  # kombu's list for priority 3
    redis.lpush("sms", "e")

    samples = scrape()

    assert samples[("messaging_queue_depth", (("channel", "email"),))] == 4
    assert samples[("messaging_queue_depth", (("channel", "sms"),))] == 1


def test_counts_add_up_across_processes_in_redis(db):
    """Workers on other machines write the same hash: simulate one with its own client."""
    metrics.record_outcomes("email", "smtp", [("sent", 1)])
    get_redis.cache_clear()  # a fresh connection, as in another process
    metrics.record_outcomes("email", "smtp", [("sent", 1)])

    assert scrape()[("messaging_sent_total", (("channel", "email"), ("provider", "smtp")))] == 2


class CountingRedis:
    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.round_trips = 0

    def pipeline(self, **kwargs: Any) -> Any:
        pipe = self.redis.pipeline(**kwargs)
        execute = pipe.execute

        def counted() -> Any:
            self.round_trips += 1
            return execute()

        pipe.execute = counted
        return pipe

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"direct Redis call {name}: use the pipeline")


def test_each_record_call_costs_one_round_trip(monkeypatch):
    spy = CountingRedis(get_redis())
    monkeypatch.setattr(metrics, "get_redis", lambda: spy)

    metrics.record_outcomes("email", "smtp", [("sent", 5), ("failed", 2), ("retry", 1)])
    metrics.record_rate_limit_wait("email", 0.5)
    metrics.record_job_finished("email", "completed", 12.0)

    assert spy.round_trips == 3


def test_recording_never_raises_when_redis_is_down(db, settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    get_redis.cache_clear()

    metrics.record_outcomes("email", "smtp", [("sent", 1)])
    metrics.record_rate_limit_wait("email", 1.0)
    metrics.record_job_finished("email", "completed", 1.0)

    assert "metrics: could not record" in caplog.text
    response = Client().get("/metrics")
    assert response.status_code == 503


def test_a_metrics_token_protects_the_endpoint(db, settings, user):
    settings.METRICS_TOKEN = "s3cret-token"
    assert Client().get("/metrics").status_code == 403
    assert Client().get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 403
    scrape(Authorization="Bearer s3cret-token")
    user.is_staff = True
    user.save()
    staff = Client()
    staff.force_login(user)
    scrape(staff)


def test_json_logs_carry_the_job_and_delivery_ids():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("tests.json_logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with log_context(job_id="job-1", channel="email"):
            logger.warning("sent %s", "a@example.com", extra={"delivery_id": 7})
        logger.error("outside")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "sent a@example.com" and first["level"] == "WARNING"
    assert (first["job_id"], first["delivery_id"], first["channel"]) == ("job-1", 7, "email")
    assert "job_id" not in second
