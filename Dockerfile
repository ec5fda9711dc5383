# One image for every process of a deployment: web (gunicorn), Celery workers and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

RUN groupadd --system app && useradd --system --gid app --home-dir /app --no-create-home app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY --chown=app:app . .

# Static files (admin, API docs) are collected at build time; no database or Redis needed.
RUN MESSAGING_EMBEDDED=true SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
    && chown -R app:app /app/staticfiles

USER app

EXPOSE 8000

# The web process; workers and beat override the command (see docker-compose.yml).
CMD ["gunicorn", "messaging_site.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", \
     "--timeout", "60", "--access-logfile", "-", "--forwarded-allow-ips", "*"]
