"""Settings for the bulk messaging service.

This is the only module that reads the environment (django-environ; a `.env` file beside
`manage.py` is read too). Apps read their options through `communication.conf`.
"""

import socket
from pathlib import Path
from urllib.parse import urlparse

import environ

from communication.conf import DEFAULTS as COMMUNICATION_DEFAULTS

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def _redis_reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "localhost", parsed.port or 6379), 0.3):
            return True
    except OSError:
        return False


DEFAULT_REDIS_URL = "redis://localhost:6379/0"
REDIS_URL = env.str("REDIS_URL", default=DEFAULT_REDIS_URL)
# Embedded mode: no Redis configured and none running locally. Work then runs in-process
# (eager Celery, in-memory rate limiter and progress) so the quick start needs nothing installed.
EMBEDDED = env.bool(
    "MESSAGING_EMBEDDED",
    default="REDIS_URL" not in env.ENVIRON and not _redis_reachable(REDIS_URL),
)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="insecure-development-key-set-SECRET_KEY-in-production")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "anymail",
    "communication",
    "ecommerce",
    "queue_status",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "messaging_site.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "messaging_site.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Workers and the web process write concurrently; wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
    # Take the write lock when a transaction starts: an upgrade from read to write fails at
    # once with "database is locked" when another process writes.
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    # A file, not memory, so that worker processes started by tests share the test database.
    DATABASES["default"].setdefault("TEST", {"NAME": str(BASE_DIR / "test_db.sqlite3")})
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# A 100,000-recipient request of long addresses is a few MB of JSON; larger bodies get a 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=16 * 1024 * 1024)

# --- Email ---------------------------------------------------------------------------------
if "EMAIL_URL" in env.ENVIRON:
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default=EMAIL_BACKEND)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
# Absolute links in emails (unsubscribe) point here.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://localhost:8000")
SHOP_NAME = env.str("SHOP_NAME", default="Our shop")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="noreply@localhost")
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(BASE_DIR / "sent_email"))
ANYMAIL = {"WEBHOOK_SECRET": env.str("ANYMAIL_WEBHOOK_SECRET", default="")}  # "user:pass"

# --- The messaging service (read through communication.conf) -------------------------------
# Every option of communication.conf.DEFAULTS can be set by an environment variable of its name.
COMMUNICATION = {
    name: env.get_value(name, cast=type(default), default=default)
    for name, default in COMMUNICATION_DEFAULTS.items()
}
COMMUNICATION["EMBEDDED"] = EMBEDDED
if "SMS_FILE_PATH" not in env.ENVIRON:
    COMMUNICATION["SMS_FILE_PATH"] = str(BASE_DIR / "sent_sms")

# --- Celery ----------------------------------------------------------------------------------
CELERY_BROKER_URL = "memory://" if EMBEDDED else REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = EMBEDDED
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Nothing we enqueue waits in the broker for more than a minute (countdowns are capped),
# so the visibility timeout only decides how soon a killed worker's task comes back.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    "socket_timeout": 5,
    "socket_connect_timeout": 5,
}
CELERY_TASK_DEFAULT_QUEUE = "default"
# Survives a broker restart and gives up the lanes of links dropped with a lost connection.
CELERY_WORKER_CONSUMER = "communication.worker:Consumer"
# A batch running when the broker connection drops finishes and hands its lane on (its lost ack
# is harmless: a redelivered link is stale). Killing it mid-send would leave a send in doubt.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# One sweep per channel, on that channel's queue, so whichever workers run recover their own jobs.
CELERY_BEAT_SCHEDULE = {
    f"recovery-sweep-{channel}": {
        "task": "communication.sweep",
        "schedule": COMMUNICATION["SWEEP_INTERVAL"],
        "args": (channel,),
        "options": {"queue": channel, "expires": COMMUNICATION["SWEEP_INTERVAL"]},
    }
    for channel in ("email", "sms")
}
CELERY_TIMEZONE = TIME_ZONE

# --- REST framework --------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["communication.api_errors.SizeLimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "communication.schema.AutoSchema",
    "EXCEPTION_HANDLER": "communication.api_errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Bulk messaging API",
    "DESCRIPTION": "Send email and SMS in bulk through a rate-limited queue and follow each job.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# LOG_FORMAT=json: one JSON object per line, carrying job_id and delivery_id of each send.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "communication.logging.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "communication.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["context"],
            "formatter": env.str("LOG_FORMAT", default="plain"),
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # workers log through LOGGING too

# --- Security --------------------------------------------------------------------------------
# Production hardening switches on with PRODUCTION=true (when DEBUG is off); each flag below can
# also be set on its own. Everything defaults off so that local development and the test suite
# keep working over plain HTTP. Behind a TLS-terminating proxy, the proxy must set
# X-Forwarded-Proto (SECURE_PROXY_SSL_HEADER trusts it only when production mode is on).
PRODUCTION = env.bool("PRODUCTION", default=False) and not DEBUG
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
_SECURE = PRODUCTION or SECURE_SSL_REDIRECT
if _SECURE and "SECRET_KEY" not in env.ENVIRON:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("Set SECRET_KEY (50+ random characters) in production.")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if _SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=_SECURE)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=_SECURE)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=_SECURE)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=_SECURE)
if env.bool("USE_X_FORWARDED_PROTO", default=_SECURE):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# /metrics: open when empty (keep it on an internal network), else `Authorization: Bearer <it>`.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Responses to requests with an Idempotency-Key are replayed for this long (at least 24 h).
IDEMPOTENCY_TTL = env.int("IDEMPOTENCY_TTL", default=24 * 3600)
# Per-user throttles (shared by every web process through the cache below): the send
# endpoints have their own scope; everything else gets a generous per-user ceiling.
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = ["communication.throttling.UserRateThrottle"]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "send": env.str("SEND_THROTTLE_RATE", default="120/min") or None,
    "user": env.str("API_THROTTLE_RATE", default="3000/min") or None,
}

# --- Cache -----------------------------------------------------------------------------------
# Throttle counters must be shared by all web processes: Redis, except in embedded mode.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
        if EMBEDDED
        else {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "cache",
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 5},
        }
    )
}

# --- API schema ------------------------------------------------------------------------------
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {
    "ChannelEnum": "communication.models.Channel",
    "JobStatusEnum": "communication.models.JobStatus",
    "DeliveryStatusEnum": "communication.models.DeliveryStatus",
    "SendResultStatusEnum": "communication.send_responses.SEND_RESULT_STATUSES",
}
