"""The service's options: one door to `settings.COMMUNICATION`, with the defaults of SPEC §2."""

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, Any] = {
    "SMS_BACKEND": "console",
    "SMS_WEBHOOK_URL": "",
    "SMS_SENDER_ID": "Messaging",
    "SMS_FILE_PATH": "sent_sms",
    # Several SMS providers with failover (backends/sms/pool.py); empty: SMS_BACKEND alone.
    "SMS_PROVIDERS": "",
    "SMS_FAILOVER_ERROR_RATE": 0.5,
    "SMS_FAILOVER_MIN_SENDS": 5,
    # Signs the generic provider's callbacks and authenticates Arkesel's (communication.webhooks).
    "SMS_WEBHOOK_SECRET": "",
    "TWILIO_ACCOUNT_SID": "",
    "TWILIO_AUTH_TOKEN": "",
    "TWILIO_API_URL": "https://api.twilio.com",
    "ARKESEL_API_KEY": "",
    "ARKESEL_API_URL": "https://sms.arkesel.com",
    "PROVIDER_TIMEOUT": 10.0,
    "DEFAULT_PHONE_REGION": "GH",
    "EMAIL_RATE_LIMIT": "5/s",
    "SMS_RATE_LIMIT": "3/s",
    "EMAIL_BATCH_SIZE": 10,
    "SMS_BATCH_SIZE": 10,
    "EMAIL_BATCH_DELAY": 1.0,
    "SMS_BATCH_DELAY": 2.0,
    "BATCHES_IN_FLIGHT": 2,
    "BULK_THRESHOLD": 10,
    "SYNC_SEND_WAIT": 5.0,
    "MAX_RETRIES": 3,
    "RETRY_BACKOFF": 2.0,
    "RETRY_BACKOFF_MAX": 600.0,
    "MAX_RECIPIENTS_PER_REQUEST": 100_000,
    "RATE_LIMIT_MAX_WAIT": 5.0,
    "RATE_LIMIT_MARGIN": 0.05,
    "CIRCUIT_BREAKER_THRESHOLD": 10,
    "CIRCUIT_BREAKER_COOLDOWN": 30.0,
    "DELIVERY_LEASE": 300.0,
    "JOB_HEARTBEAT_TTL": 120.0,
    "SWEEP_INTERVAL": 5.0,
    "EMBEDDED": False,
}


def get_setting(name: str) -> Any:
    """Return option `name` of `settings.COMMUNICATION`, falling back to its default."""
    options = getattr(settings, "COMMUNICATION", {})
    if name in options:
        return options[name]
    if name in DEFAULTS:
        return DEFAULTS[name]
    raise ImproperlyConfigured(f"COMMUNICATION[{name!r}] is not a known option")


def get_required_setting(name: str) -> Any:
    """Like `get_setting`, but an empty value raises `ImproperlyConfigured` naming the key."""
    value = get_setting(name)
    if value in ("", None):
        raise ImproperlyConfigured(f"Set {name} (COMMUNICATION[{name!r}]) to use this backend")
    return value


def channel_setting(channel: str, name: str) -> Any:
    """`channel_setting("email", "BATCH_SIZE")` reads EMAIL_BATCH_SIZE."""
    return get_setting(f"{channel.upper()}_{name}")
