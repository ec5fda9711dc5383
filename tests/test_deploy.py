"""The container files: one image for web, worker and beat; Redis and PostgreSQL with health checks.

No Docker engine runs in CI, so these read docker-compose.yml and the Dockerfile as data.
"""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("web", "worker", "beat")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def command(service: dict) -> str:
    value = service["command"]
    return " ".join(value) if isinstance(value, list) else " ".join(value.split())


def test_services_are_all_there(compose):
    assert set(compose["services"]) >= {"web", "worker", "beat", "redis", "postgres"}


def test_web_worker_and_beat_share_one_image(compose):
    services = compose["services"]
    assert {services[name]["image"] for name in APP_SERVICES} == {"messaging-service:latest"}
    assert all(services[name]["build"] == "." for name in APP_SERVICES)


def test_commands(compose):
    services = compose["services"]
    assert "gunicorn messaging_site.wsgi" in command(services["web"])
    assert "migrate" in command(services["web"])
    assert (
        "celery -A messaging_site worker -Q email,sms -l info --prefetch-multiplier 1"
        in command(services["worker"])
    )
    assert command(services["beat"]).startswith("celery -A messaging_site beat -l info")


def test_infrastructure_images_and_redis_persistence(compose):
    services = compose["services"]
    assert re.fullmatch(r"redis:7(\.\d+)*(-\w+)?", services["redis"]["image"])
    assert re.fullmatch(r"postgres:16(\.\d+)*(-\w+)?", services["postgres"]["image"])
    redis_command = command(services["redis"])
    assert "--appendonly yes" in redis_command
    assert "--maxmemory-policy noeviction" in redis_command
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])
    assert any("/var/lib/postgresql/data" in v for v in services["postgres"]["volumes"])


@pytest.mark.parametrize("name", ["web", "worker", "beat", "redis", "postgres"])
def test_every_service_has_a_health_check(compose, name):
    check = compose["services"][name]["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1
    assert check["interval"] and check["retries"] >= 1


@pytest.mark.parametrize("name", APP_SERVICES)
def test_environment_wiring(compose, name):
    service = compose["services"][name]
    env = service["environment"]
    assert set(env) >= {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS"}
    assert (
        env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
    )
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert "${SECRET_KEY:?" in env["SECRET_KEY"]  # no default secret: compose refuses to start
    assert env["DEBUG"] == "false"
    for dependency in ("redis", "postgres"):
        assert service["depends_on"][dependency]["condition"] == "service_healthy"


def test_dockerfile(dockerfile):
    assert re.search(r"^FROM python:3\.11(\.\d+)?-slim", dockerfile, re.M)
    assert "pip install -r requirements.txt" in dockerfile
    assert "collectstatic --noinput" in dockerfile
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r'^CMD \["gunicorn", "messaging_site\.wsgi"', dockerfile, re.M)


def test_dockerignore_keeps_secrets_and_local_state_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".env", ".venv", "*.sqlite3"} <= set(ignored)


def test_requirements_pin_the_production_pieces():
    requirements = (ROOT / "requirements.txt").read_text()
    for name in ("gunicorn", "prometheus-client", "psycopg", "redis"):
        assert re.search(rf"^{name}\b", requirements, re.M | re.I), name
