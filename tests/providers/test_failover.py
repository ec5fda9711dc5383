"""Several SMS providers: configuration, weighted choice, failover and recovery, own rate limits."""

import contextlib
import time
from collections import Counter
from typing import Any

import pytest

from communication.backends.sms import pool as providers
from communication.backends.sms.pool import ProviderConfig, ProviderPool, parse_providers
from communication.exceptions import CommunicationError, ProviderConfigurationError
from communication.models import Delivery
from communication.rate_limit import parse_rules
from communication.senders import SmsSender
from communication.stores import get_provider_pool, get_rate_limiter, get_redis

from ..factories import SmsJobFactory
from ..helpers import configure, numbers, run_until_done
from ..servers import SmsProvider

pytestmark = pytest.mark.django_db

PREFIX = "+2332420"  # this module's recipients


def test_the_configuration_is_parsed() -> None:
    parsed = parse_providers(
        "primary=webhook:https://a.example/sms weight=3 rate=10/s,1000/d from=Shop;\n"
        " backup=twilio sid=AC1 token=tok weight=0 secret=s3"
    )
    primary, backup = parsed
    assert primary == ProviderConfig(
        alias="primary",
        backend="webhook",
        weight=3,
        rate="10/s;1000/d",
        sender_id="Shop",
        credentials=(("url", "https://a.example/sms"),),
    )
    assert (backup.kind, backup.weight, backup.secret) == ("twilio", 0, "s3")
    assert dict(backup.credentials) == {"account_sid": "AC1", "auth_token": "tok"}


@pytest.mark.parametrize(
    "text",
    [
        "primary webhook",
        "a=webhook:x; a=webhook:y",
        "a=nosuchbackend",
        "a=webhook:x colour=red",
        "a=webhook:x rate=10/s;1000/d",  # rules are joined by "," inside an entry
        "a=webhook:x weight=-1",
        "a=webhook:x weight=0",
    ],
)
def test_a_bad_configuration_names_the_setting(text: str) -> None:
    with pytest.raises(ProviderConfigurationError, match="SMS_PROVIDERS"):
        parse_providers(text)


def test_without_providers_the_single_backend_is_used(settings: Any, user: Any) -> None:
    job = SmsJobFactory(owner=user, recipients=numbers(1, prefix=PREFIX))
    assert get_provider_pool() is None
    assert SmsSender(job).provider == "locmem"


def test_each_provider_has_its_own_rate_limit(settings: Any) -> None:
    configure(
        settings,
        SMS_RATE_LIMIT="3/s",
        SMS_PROVIDERS="primary=webhook:http://a/sms rate=10/s,1000/d; backup=webhook:http://b/sms",
    )
    assert get_rate_limiter("sms", "primary").rules == parse_rules("10/s;1000/d")
    assert get_rate_limiter("sms", "backup").rules == parse_rules("3/s")
    assert get_rate_limiter("sms", "primary").key != get_rate_limiter("sms", "backup").key
    assert get_rate_limiter("email", "smtp").rules == parse_rules("5/s")


def make_pool(text: str, **kwargs: Any) -> ProviderPool:
    options = {"error_rate": 0.5, "min_sends": 4, **kwargs}
    return ProviderPool(parse_providers(text), get_redis(), **options)


def test_choice_follows_the_weights() -> None:
    pool = make_pool("a=locmem weight=3; b=locmem weight=1; standby=locmem weight=0")
    chosen = Counter(pool.choose().alias for _ in range(2000))
    assert set(chosen) == {"a", "b"}
    assert 2.4 < chosen["a"] / chosen["b"] < 3.8


def test_failing_providers_are_avoided_and_the_least_bad_is_the_last_resort() -> None:
    pool = make_pool("a=locmem weight=3; b=locmem weight=1; standby=locmem weight=0")
    for _ in range(4):
        pool.record("a", ok=False)
    assert {pool.choose().alias for _ in range(50)} == {"b"}
    for _ in range(3):
        pool.record("b", ok=False)
    pool.record("b", ok=True)
    assert pool.health()["b"].error_rate == 0.75
    assert {pool.choose().alias for _ in range(50)} == {"standby"}  # the standby takes over
    for _ in range(5):
        pool.record("standby", ok=False)
    assert pool.choose().alias == "b"  # all unhealthy: the lowest error rate


def test_health_covers_the_last_minute_only(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_000_000.0]
    pool = make_pool("a=locmem; b=locmem", clock=lambda: now[0])
    for _ in range(4):
        pool.record("a", ok=False)
    now[0] += 50
    assert pool.health()["a"].errors == 4
    now[0] += 15
    assert pool.health()["a"].errors == 0


@pytest.fixture
def two_providers(settings: Any):
    primary, backup = SmsProvider(), SmsProvider()
    primary.start()
    backup.start()
    configure(
        settings,
        SMS_PROVIDERS=f"primary=webhook:{primary.url} weight=9; backup=webhook:{backup.url}",
        SMS_RATE_LIMIT="200/s",
        SMS_BATCH_SIZE=5,
        SMS_BATCH_DELAY=0.0,
        SMS_FAILOVER_MIN_SENDS=3,
        SMS_FAILOVER_ERROR_RATE=0.5,
        CIRCUIT_BREAKER_THRESHOLD=100,
        RETRY_BACKOFF=0.05,
        RETRY_BACKOFF_MAX=0.2,
    )
    yield primary, backup
    primary.stop()
    backup.stop()


def test_traffic_moves_to_the_healthy_provider_and_back(
    two_providers: tuple[SmsProvider, SmsProvider], user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    primary, backup = two_providers
    first = numbers(30, prefix=PREFIX)
    for number in first:
        primary.failures.add(number, 503)  # the primary is down

    job = SmsJobFactory(owner=user, recipients=first)
    run_until_done(job.id, deadline=30.0)

    job.refresh_from_db()
    assert job.status == "completed" and job.completed_count == 30
    assert backup.counts() == {number: 1 for number in first}  # everyone, once, via the backup
    assert primary.received == [] and sum(primary.attempts.values()) <= 10
    assert set(Delivery.objects.filter(job=job).values_list("provider", flat=True)) == {"backup"}
    ids = Delivery.objects.filter(job=job).values_list("provider_message_id", flat=True)
    assert all(ids)

    # The primary recovers; a minute later its failures have aged out and it is used again.
    primary.failures.clear()
    later = time.time() + 61
    monkeypatch.setattr(providers, "pool_clock", lambda: later)
    second = numbers(30, start=100, prefix=PREFIX)
    job = SmsJobFactory(owner=user, recipients=second)
    run_until_done(job.id, deadline=30.0)

    job.refresh_from_db()
    assert job.completed_count == 30
    by_provider = Counter(Delivery.objects.filter(job=job).values_list("provider", flat=True))
    assert by_provider["primary"] >= 15  # weight 9 of 10: nearly every batch
    assert sorted(primary.recipients() + backup.recipients()[30:]) == sorted(second)


def test_the_sender_records_each_send_into_its_providers_health(settings: Any, user: Any) -> None:
    provider = SmsProvider()
    provider.start()
    try:
        configure(settings, SMS_PROVIDERS=f"only=webhook:{provider.url} from=Shop")
        recipients = numbers(3, prefix=PREFIX)
        provider.failures.add(recipients[1], 503)
        provider.failures.add(recipients[2], 400)  # the recipient's fault, not the provider's
        job = SmsJobFactory(owner=user, recipients=recipients)
        sender = SmsSender(job)
        assert sender.provider == "only"
        sender.open()
        for delivery in Delivery.objects.filter(job=job).order_by("id"):
            with contextlib.suppress(CommunicationError):
                sender.send(sender.prepare(delivery))
        sender.close()
        assert get_provider_pool().health()["only"] == providers.Health(sent=1, errors=1)
        assert provider.received[0].body["from"] == "Shop"
    finally:
        provider.stop()
