"""The web process killed (SIGKILL) while it creates a 100,000-recipient job: the whole job exists
and runs to the end, or none of it exists; never a job left pending for ever (SPEC §4)."""

import threading
import time

import pytest
import requests
from django.db import connection
from django.db.models import Count
from rest_framework.authtoken.models import Token

from communication.models import Delivery, Job, JobStatus

from ..servers import wait_until

pytestmark = pytest.mark.slow

RECIPIENTS = 100_000


def insert_in_progress() -> bool:
    """A transaction of the web process is inserting the deliveries (PostgreSQL only: they
    stream in with COPY)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL "
            "AND (query LIKE 'COPY \"communication_delivery\"%%'"
            " OR query LIKE 'INSERT INTO \"communication_delivery\"%%')"
        )
        return cursor.fetchone()[0] > 0


def job_committed() -> bool:
    return Job.objects.exists()


@pytest.mark.parametrize("moment", ["while inserting", "just after commit"])
def test_web_killed_while_creating_a_large_job(service, user, moment):
    if moment == "while inserting" and connection.vendor != "postgresql":
        pytest.skip("spotting the insert in flight needs PostgreSQL's pg_stat_activity")
    service.configure(
        # An hourly quota only: sends are not spaced, so the 100,000 go out in well under a
        # minute (a per-second rule spaces them, and one lane could not keep up with 10 µs).
        EMAIL_RATE_LIMIT="10000000/h",
        EMAIL_BATCH_SIZE=250,
        EMAIL_BATCH_DELAY=0,
        BATCHES_IN_FLIGHT=4,
    )
    # The provider is Django's dummy backend (accepts everything at once), so that resuming
    # the whole job takes seconds; delivery to a real SMTP server is covered elsewhere.
    env = {**service.env, "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend"}
    token = Token.objects.create(user=user).key
    web = service.start_web(env)
    body = {
        "recipients": [f"customer{i:06d}@example.com" for i in range(RECIPIENTS)],
        "subject": "Sale",
        "message": "<p>Sale</p>",
    }
    answers: list[object] = []

    def post() -> None:
        try:
            answers.append(
                requests.post(
                    web.url + "/api/communication/email/send",
                    json=body,
                    headers={"Authorization": f"Token {token}"},
                    timeout=120,
                )
            )
        except requests.RequestException as err:
            answers.append(err)

    client = threading.Thread(target=post)
    started = time.monotonic()
    client.start()
    spot = insert_in_progress if moment == "while inserting" else job_committed
    wait_until(spot, 60, 0.01, f"the web process to be {moment}")
    web.kill()
    killed_after = time.monotonic() - started
    client.join(30)

    jobs = list(Job.objects.all())
    deliveries = Delivery.objects.count()
    assert (len(jobs), deliveries) in ((0, 0), (1, RECIPIENTS)), (jobs, deliveries)
    if not jobs:
        print(f"\nweb killed {moment} ({killed_after:.1f}s in): no job, no delivery row left")
        return

    job = jobs[0]
    assert job.total == RECIPIENTS
    service.start_worker(beat=True, concurrency=2)
    resumed = time.monotonic()
    wait_until(
        lambda: Job.objects.get(id=job.id).status not in (JobStatus.QUEUED, JobStatus.RUNNING),
        240,
        1.0,
        "the job to finish",
    )
    took = time.monotonic() - resumed
    job.refresh_from_db()
    statuses = dict(Delivery.objects.filter(job=job).values_list("status").annotate(n=Count("id")))
    print(
        f"\nweb killed {moment} ({killed_after:.1f}s in): the job existed with {RECIPIENTS} rows, "
        f"{job.status} {took:.0f}s after a worker started: {statuses}"
    )
    assert job.status == JobStatus.COMPLETED
    assert statuses == {"sent": RECIPIENTS} and job.completed_count == RECIPIENTS
