"""Fixtures: a private Redis for every test, and real providers and workers where asked."""

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from communication.backends.sms import locmem
from communication.stores import get_redis
from messaging_site.celery import app as celery_app

from .servers import (
    ProcessGroup,
    RedisServer,
    SmsProvider,
    SmtpServer,
    WebServer,
    Worker,
    database_url,
)

logging.getLogger("mail.log").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    celery_app.conf.broker_url = server.url
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def shared_state(settings: Any, redis_server: RedisServer) -> Iterator[None]:
    """Every test talks to the private Redis, starts from an empty one, and sends nowhere real."""
    settings.REDIS_URL = redis_server.url
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_server.url,
            "KEY_PREFIX": "cache",
        }
    }
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.COMMUNICATION = {**settings.COMMUNICATION, "EMBEDDED": False, "SMS_BACKEND": "locmem"}
    get_redis.cache_clear()
    locmem.outbox.clear()
    redis_server.client().flushall()
    yield
    get_redis.cache_clear()


@pytest.fixture
def user(db: None) -> Any:
    return get_user_model().objects.create_user("ama", "ama@example.com", "pw-ama-123")


@pytest.fixture
def other_user(db: None) -> Any:
    return get_user_model().objects.create_user("kofi", "kofi@example.com", "pw-kofi-123")


def token_client(user: Any) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api(user: Any) -> APIClient:
    return token_client(user)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sms_provider() -> Iterator[SmsProvider]:
    provider = SmsProvider()
    provider.start()
    yield provider
    provider.stop()


class Service:
    """The service wired to real providers: settings for this process, env for workers."""

    def __init__(self, settings: Any, redis: RedisServer, smtp: SmtpServer, sms: SmsProvider):
        self.settings = settings
        self.redis = redis
        self.smtp = smtp
        self.sms = sms
        self.processes: list[ProcessGroup] = []
        self.env: dict[str, str] = {
            "DATABASE_URL": database_url(connection.settings_dict),
            "REDIS_URL": redis.url,
            "MESSAGING_EMBEDDED": "false",
            "EMAIL_URL": smtp.url,
            "SMS_BACKEND": "webhook",
            "SMS_WEBHOOK_URL": sms.url,
            "LOG_LEVEL": "INFO",
        }
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        self.configure(SMS_BACKEND="webhook", SMS_WEBHOOK_URL=sms.url)

    def configure(self, **options: Any) -> None:
        """Set service options (COMMUNICATION keys) here and for workers started later."""
        self.settings.COMMUNICATION = {**self.settings.COMMUNICATION, **options}
        self.env.update({name: str(value) for name, value in options.items()})

    def start_worker(self, **kwargs: Any) -> Worker:
        worker = Worker(self.env, **kwargs)
        self.processes.append(worker)
        return worker

    def start_web(self, env: dict[str, str] | None = None, **kwargs: Any) -> WebServer:
        """gunicorn with this service's env (or `env`), stopped when the test ends."""
        web = WebServer(env if env is not None else self.env, **kwargs)
        self.processes.append(web)
        return web

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


@pytest.fixture
def service(
    settings: Any,
    redis_server: RedisServer,
    smtp_server: SmtpServer,
    sms_provider: SmsProvider,
    transactional_db: None,
) -> Iterator[Service]:
    service = Service(settings, redis_server, smtp_server, sms_provider)
    yield service
    service.stop()
