"""PostgreSQL restarted mid-job, on a private cluster: the web app, workers and beat reconnect,
the job completes, and nobody gets the message twice (SPEC §4)."""

import time
from collections import Counter

import pytest

from ..helpers import final_progress, numbers
from ..servers import Worker, wait_until

pytestmark = pytest.mark.slow

RECIPIENTS = 120
PREFIX = "+2332430"  # this module's recipients


def test_postgres_restart_mid_job(service, private_postgres, sms_provider):
    service.configure(SMS_RATE_LIMIT="20/s")  # otherwise the shipped defaults
    env = {**service.env, "DATABASE_URL": private_postgres.database("rel_pg_restart")}
    web = service.start_web(env)
    workers = [Worker(env, beat=True), Worker(env, concurrency=2)]
    try:
        client = web.client("ama")
        recipients = numbers(RECIPIENTS, prefix=PREFIX)
        response = client.post(
            "/api/communication/sms/send", {"recipients": recipients, "message": "Sale"}
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["jobId"]
        wait_until(lambda: len(sms_provider.received) >= 40, 30, what="40 sends")

        began = time.monotonic()
        sent_before = len(sms_provider.received)
        private_postgres.restart(down_for=3.0)
        restarted = time.monotonic() - began
        errors: list[str] = []
        final = final_progress(client, "sms", job_id, timeout=120, errors=errors)
        took = time.monotonic() - began
        rows = private_postgres.sql(
            "SELECT status, count(*) FROM communication_delivery "
            f"WHERE job_id = '{job_id}' GROUP BY status",
            "rel_pg_restart",
        )
    finally:
        web.stop()
        for worker in workers:
            worker.stop()

    outcome = Counter({s: int(n) for s, n in (line.split("|") for line in rows.splitlines())})
    print(
        f"\nPostgreSQL down {restarted:.1f}s after {sent_before} of {RECIPIENTS} sends: "
        f"final {dict(outcome)}"
        f", {len(sms_provider.duplicates())} duplicates, job {final['status']} "
        f"{took:.1f}s after the restart began; {len(errors)} progress polls failed meanwhile "
        f"({dict(Counter(errors))})"
    )
    # Nothing twice, nothing lost: every recipient reached the provider exactly once.
    assert sms_provider.duplicates() == {}
    assert sorted(sms_provider.recipients()) == recipients
    assert sum(outcome.values()) == RECIPIENTS == final["total"]
    assert set(outcome) <= {"sent", "unknown"}, outcome
    assert outcome["sent"] == final["completed"] and outcome["unknown"] == final["unknown"]
    assert final["status"] == ("completed" if not outcome["unknown"] else "completed_with_errors")
    # Batches whose outcomes could not be written while the database was down keep trying
    # until it is back (within half the lease), so nothing ends in doubt.
    assert outcome["unknown"] == 0
