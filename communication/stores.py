"""Where the shared state lives: one Redis client per process, and the limiter of each channel.

In embedded mode (no Redis; see settings.EMBEDDED) an in-process fakeredis server stands in, so
the same Lua scripts and keys serve the single process of the quick start.
"""

import functools

import redis
from django.conf import settings

from . import liveness
from .backends.sms import pool as sms_pool
from .circuit import CircuitBreaker
from .conf import channel_setting, get_setting
from .handovers import HandOvers
from .pacing import BatchGate
from .progress import ProgressStore
from .rate_limit import RateLimiter, parse_rules
from .runtime import JobRuntime


@functools.cache
def get_redis() -> redis.Redis:
    if get_setting("EMBEDDED"):
        import fakeredis

        return fakeredis.FakeRedis()
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=5,
        socket_connect_timeout=2,
        health_check_interval=30,
        retry_on_timeout=False,
    )


def get_rate_limiter(channel: str, provider: str) -> RateLimiter:
    """The global limiter for `provider` on `channel`: the provider's own rules (`rate=` in
    SMS_PROVIDERS) or the channel's."""
    rules = sms_pool.provider_rate_limit(channel, provider) or channel_setting(
        channel, "RATE_LIMIT"
    )
    return RateLimiter(
        f"ratelimit:{channel}:{provider}",
        parse_rules(rules),
        get_redis(),
        margin=get_setting("RATE_LIMIT_MARGIN"),
    )


def get_progress_store() -> ProgressStore:
    return ProgressStore(get_redis())


def get_job_runtime() -> JobRuntime:
    return JobRuntime(get_redis(), heartbeat_ttl=get_setting("JOB_HEARTBEAT_TTL"))


def get_handovers() -> HandOvers:
    return HandOvers(get_redis())


def get_batch_gate() -> BatchGate:
    return BatchGate(get_redis())


def get_liveness() -> liveness.Liveness:
    return liveness.Liveness(get_redis())


def process_owner() -> str:
    """This process's owner id for claims and lanes (its heartbeat starts on first use)."""
    return liveness.process_owner(get_redis)


def get_circuit_breaker(channel: str, provider: str) -> CircuitBreaker:
    return CircuitBreaker(
        get_redis(),
        f"circuit:{channel}:{provider}",
        threshold=get_setting("CIRCUIT_BREAKER_THRESHOLD"),
        cooldown=get_setting("CIRCUIT_BREAKER_COOLDOWN"),
    )


def get_provider_pool() -> sms_pool.ProviderPool | None:
    """The pool of `SMS_PROVIDERS`, or None when it is not set (then `SMS_BACKEND` alone)."""
    providers = sms_pool.configured_providers()
    if not providers:
        return None
    return sms_pool.ProviderPool(
        providers,
        get_redis(),
        error_rate=float(get_setting("SMS_FAILOVER_ERROR_RATE")),
        min_sends=int(get_setting("SMS_FAILOVER_MIN_SENDS")),
        clock=sms_pool.pool_clock,
    )
