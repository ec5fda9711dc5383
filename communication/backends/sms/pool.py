"""Several SMS providers at once: chosen by weight, avoided while they fail, each rate-limited.

`SMS_PROVIDERS` lists them, separated by `;` (or new lines)::

    primary=webhook:https://a.example/sms weight=3 rate=10/s;
    backup=twilio sid=AC123 token=secret weight=1 rate=1/s,5000/d

Each entry starts with `alias=backend[:url]` (`backend` is an `SMS_BACKEND` alias or a dotted
path) followed by options: `weight` (default 1; 0 = standby, used only when the others are
unhealthy), `rate` (its own rate limit, rules joined by `,`; default `SMS_RATE_LIMIT`), `from`
(sender id), `url`, `sid`/`token` (Twilio), `key` (Arkesel) and `secret` (webhook receipts).

Health is counted in Redis: successes and provider errors per provider in 10-second buckets,
read over the last minute. A provider whose error rate passes `SMS_FAILOVER_ERROR_RATE` (once it
made at least `SMS_FAILOVER_MIN_SENDS` sends) gets no new batches; when its failures age out of
the window it is tried again, and stays in if it answers. A sender chooses once per batch.
"""

import contextlib
import functools
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from django.core.exceptions import ImproperlyConfigured

from ...conf import get_setting
from ...exceptions import CommunicationError, ProviderConfigurationError
from ...rate_limit import parse_rules
from .. import sms_backend_class
from .base import BaseSmsBackend

BUCKET_SECONDS = 10
WINDOW_BUCKETS = 6  # one minute
KEY_TTL_SECONDS = BUCKET_SECONDS * (WINDOW_BUCKETS + 1)
# Options passed to the backend's constructor, by the keyword it takes.
CONSTRUCTOR_OPTIONS = {"url": "url", "sid": "account_sid", "token": "auth_token", "key": "api_key"}
OPTIONS = {"weight", "rate", "from", "secret", *CONSTRUCTOR_OPTIONS}
_ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,50}$")
# Provider errors that say the provider, not the recipient, is at fault.
_PROVIDER_FAULT_STATUSES = {401, 402, 403, 404, 407}


@dataclass(frozen=True)
class ProviderConfig:
    alias: str
    backend: str  # an SMS_BACKEND alias or dotted path
    weight: int = 1
    rate: str = ""  # rate-limit rules joined by ";", or "" for the channel's
    sender_id: str = ""
    secret: str = ""
    credentials: tuple[tuple[str, str], ...] = ()  # constructor keyword arguments

    @property
    def kind(self) -> str:
        """The backend's provider name (`webhook`, `twilio`, `arkesel`, …)."""
        return sms_backend_class(self.backend).provider_name

    def credential(self, name: str) -> str:
        return dict(self.credentials).get(name, "")


@dataclass(frozen=True)
class Health:
    sent: int = 0
    errors: int = 0

    @property
    def error_rate(self) -> float:
        total = self.sent + self.errors
        return self.errors / total if total else 0.0


def _config_error(message: str) -> ProviderConfigurationError:
    return ProviderConfigurationError(f"SMS_PROVIDERS: {message}", provider="pool")


def _parse_entry(entry: str) -> ProviderConfig:
    head, *pairs = entry.split()
    alias, eq, target = head.partition("=")
    if not eq or not _ALIAS.match(alias) or not target:
        raise _config_error(
            f"{entry!r} must start with alias=backend[:url] (alias of letters, digits, _ or -; "
            "join rate rules with ',')"
        )
    backend, _, url = target.partition(":")
    options: dict[str, str] = {"url": url} if url else {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq or name not in OPTIONS:
            raise _config_error(f"unknown option {pair!r} of {alias} (one of {sorted(OPTIONS)})")
        options[name] = value
    try:
        sms_backend_class(backend)  # fails early on an unknown backend
    except ProviderConfigurationError as err:
        raise _config_error(f"{alias}: {err}") from err
    rate = options.get("rate", "").replace(",", ";")
    try:
        weight = int(options.get("weight", "1"))
        if rate:
            parse_rules(rate)
    except ValueError as err:
        raise _config_error(f"{alias}: {err}") from err
    if weight < 0:
        raise _config_error(f"{alias}: weight must be 0 or more")
    credentials = tuple(
        (keyword, options[name]) for name, keyword in CONSTRUCTOR_OPTIONS.items() if name in options
    )
    return ProviderConfig(
        alias=alias,
        backend=backend,
        weight=weight,
        rate=rate,
        sender_id=options.get("from", ""),
        secret=options.get("secret", ""),
        credentials=credentials,
    )


@functools.lru_cache(maxsize=8)
def parse_providers(text: str) -> tuple[ProviderConfig, ...]:
    """Parse `SMS_PROVIDERS`; raises ProviderConfigurationError naming the faulty part."""
    entries = [e.strip() for e in re.split(r"[;\n]", text) if e.strip()]
    providers = tuple(_parse_entry(entry) for entry in entries)
    aliases = [p.alias for p in providers]
    if len(set(aliases)) != len(aliases):
        raise _config_error(f"aliases must be unique: {aliases}")
    if providers and not any(p.weight for p in providers):
        raise _config_error("at least one provider needs a weight above 0")
    return providers


def configured_providers() -> tuple[ProviderConfig, ...]:
    return parse_providers(get_setting("SMS_PROVIDERS") or "")


def provider_config(alias: str) -> ProviderConfig | None:
    return next((p for p in configured_providers() if p.alias == alias), None)


def provider_rate_limit(channel: str, provider: str) -> str | None:
    """The provider's own rate-limit rules (`rate=`), or None to use the channel's."""
    if channel != "sms":
        return None
    config = provider_config(provider)
    return config.rate or None if config else None


def is_provider_fault(err: CommunicationError) -> bool:
    """Whether a failed send counts against the provider's health (not the recipient's fault)."""
    return err.retryable or err.status_code in _PROVIDER_FAULT_STATUSES


class ProviderPool:
    """The configured providers with their health; see the module docstring."""

    def __init__(
        self,
        providers: Sequence[ProviderConfig],
        client: redis.Redis,
        *,
        error_rate: float,
        min_sends: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.providers = list(providers)
        self.client = client
        self.error_rate = error_rate
        self.min_sends = min_sends
        self.clock = clock

    def _bucket(self) -> int:
        return int(self.clock() // BUCKET_SECONDS)

    @staticmethod
    def _key(alias: str, bucket: int) -> str:
        return f"smshealth:{alias}:{bucket}"

    def record(self, alias: str, *, ok: bool) -> None:
        """Count one send of `alias` (one Redis round trip; a Redis error is ignored)."""
        key = self._key(alias, self._bucket())
        with contextlib.suppress(redis.RedisError):
            pipe = self.client.pipeline(transaction=False)
            pipe.hincrby(key, "ok" if ok else "err", 1)
            pipe.expire(key, KEY_TTL_SECONDS)
            pipe.execute()

    def health(self) -> dict[str, Health]:
        """Sends and errors of every provider over the last minute (one round trip)."""
        now = self._bucket()
        buckets = range(now - WINDOW_BUCKETS + 1, now + 1)
        pipe = self.client.pipeline(transaction=False)
        for provider in self.providers:
            for bucket in buckets:
                pipe.hmget(self._key(provider.alias, bucket), "ok", "err")
        replies = iter(pipe.execute())
        health = {}
        for provider in self.providers:
            counts = [next(replies) for _ in buckets]
            health[provider.alias] = Health(
                sent=sum(int(ok or 0) for ok, _ in counts),
                errors=sum(int(err or 0) for _, err in counts),
            )
        return health

    def is_healthy(self, health: Health) -> bool:
        if health.sent + health.errors < self.min_sends:
            return True
        return health.error_rate <= self.error_rate

    def choose(self) -> ProviderConfig:
        """A healthy provider by weight (standbys only if no weighted one is healthy); when
        none is healthy, the one with the lowest error rate. Without Redis, all count as healthy.
        """
        try:
            health = self.health()
        except redis.RedisError:
            health = {}
        healthy = [p for p in self.providers if self.is_healthy(health.get(p.alias, Health()))]
        candidates = [p for p in healthy if p.weight] or healthy
        if candidates:
            weights = [p.weight for p in candidates] if any(p.weight for p in candidates) else None
            return random.choices(candidates, weights=weights)[0]
        return min(self.providers, key=lambda p: (health[p.alias].error_rate, -p.weight))

    def backend(self, config: ProviderConfig) -> BaseSmsBackend:
        """A new backend instance of `config`, with its own URL or credentials."""
        backend_class = sms_backend_class(config.backend)
        kwargs: dict[str, Any] = dict(config.credentials)
        try:
            return backend_class(**kwargs)
        except TypeError as err:
            raise _config_error(
                f"{config.alias}: {backend_class.__name__} takes no {sorted(kwargs)}: {err}"
            ) from err
        except ProviderConfigurationError:
            raise
        except ImproperlyConfigured as err:
            raise ProviderConfigurationError(str(err), provider=config.alias) from err


def pool_clock() -> float:
    """The pool's clock (a function of its own, so that tests can move time on)."""
    return time.time()
