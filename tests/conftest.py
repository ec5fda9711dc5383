"""Fixtures: a private Redis for every test, and real providers and workers where asked."""

import logging
from collections.abc import Iterator
from typing import Any, TypeVar

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from communication.backends.sms import locmem
from communication.stores import get_redis
from messaging_site.celery import app as celery_app

from .factories import UserFactory
from .helpers import configure, use_smtp
from .servers import ProcessGroup, RedisServer, SmsProvider, SmtpServer, Worker, database_url
from .web import WebServer

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
    configure(settings, EMBEDDED=False, SMS_BACKEND="locmem")
    get_redis.cache_clear()
    locmem.outbox.clear()
    redis_server.client().flushall()
    yield
    get_redis.cache_clear()


@pytest.fixture
def user(db: None) -> Any:
    return UserFactory(username="ama", password="pw-ama-123")


@pytest.fixture
def other_user(db: None) -> Any:
    return UserFactory(username="kofi", password="pw-kofi-123")


def token_client(user: Any) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api(user: Any) -> APIClient:
    return token_client(user)


Server = TypeVar("Server", SmtpServer, SmsProvider)


def running(server: Server) -> Iterator[Server]:
    """`server` started for the test and stopped after it."""
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    yield from running(SmtpServer())


@pytest.fixture
def sms_provider() -> Iterator[SmsProvider]:
    yield from running(SmsProvider())


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
        use_smtp(settings, smtp.port)
        self.configure(SMS_BACKEND="webhook", SMS_WEBHOOK_URL=sms.url)

    def configure(self, **options: Any) -> None:
        """Set service options (COMMUNICATION keys) here and for workers started later."""
        configure(self.settings, **options)
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
