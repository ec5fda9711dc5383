"""A bounded load test: 30 users for 60 s against the web app under gunicorn and real workers.

Each user sends a small SMS job (2 recipients, queued) and polls its progress every 0.5 s until
it is final, then sends the next. No answer may be a 5xx and every accepted job must complete;
p50/p99 latencies are printed (and recorded in docs/RELIABILITY.md).
"""

import itertools
import statistics
import threading
import time
from collections import Counter, defaultdict

import pytest
import requests
from rest_framework.authtoken.models import Token

from communication.models import Delivery, Job, JobStatus

from ..factories import UserFactory
from ..helpers import numbers
from ..servers import SinkProcess, wait_until
from ..web import HttpApiClient

pytestmark = pytest.mark.slow

USERS = 30
ACCOUNTS = 5
DURATION = 60.0
PREFIX = "+2332440"  # this module's recipients


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def test_thirty_users_for_sixty_seconds(service):
    sink = SinkProcess()
    service.configure(SMS_RATE_LIMIT="200/s", SMS_BATCH_DELAY=0, SMS_WEBHOOK_URL=sink.url)
    env = {**service.env, "SEND_THROTTLE_RATE": "100000/min", "API_THROTTLE_RATE": "100000/min"}
    tokens = [Token.objects.create(user=user).key for user in UserFactory.create_batch(ACCOUNTS)]
    web = service.start_web(env, workers=2, threads=8)
    for _ in range(2):
        service.start_worker(concurrency=2)
    starts = itertools.count(step=2)
    lock = threading.Lock()
    latencies: dict[str, list[float]] = defaultdict(list)
    statuses: Counter[str] = Counter()
    accepted: list[str] = []
    deadline = time.monotonic() + DURATION

    def timed(kind: str, call, *args) -> requests.Response | None:
        started = time.monotonic()
        try:
            response = call(*args)
        except requests.RequestException as err:
            with lock:
                statuses[f"{kind} {type(err).__name__}"] += 1
            return None
        with lock:
            latencies[kind].append(time.monotonic() - started)
            statuses[f"{kind} {response.status_code}"] += 1
        return response

    def user(index: int) -> None:
        client = HttpApiClient(web.url, tokens[index % ACCOUNTS])
        while time.monotonic() < deadline:
            with lock:
                recipients = numbers(2, start=next(starts), prefix=PREFIX)
            body = {"recipients": recipients, "message": "Sale", "isBulk": True}
            response = timed("send", client.post, "/api/communication/sms/send", body)
            if response is None or response.status_code != 202:
                time.sleep(0.5)  # a user's pace is part of the load: they try again later
                continue
            job_id = response.json()["jobId"]
            with lock:
                accepted.append(job_id)
            while time.monotonic() < deadline:
                time.sleep(0.5)  # the load being tested: each user polls every 0.5 s
                poll = timed(
                    "progress", client.get, "/api/communication/sms/progress", {"jobId": job_id}
                )
                ok = poll is not None and poll.status_code == 200
                if ok and poll.json()["status"] not in ("queued", "running"):
                    break

    threads = [threading.Thread(target=user, args=(i,)) for i in range(USERS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(DURATION + 60)
        drained = time.monotonic()
        active = Job.objects.filter(id__in=accepted, status__in=[JobStatus.QUEUED, "running"])
        wait_until(lambda: not active.exists(), 90, 0.5, "every accepted job to finish")
        drain = time.monotonic() - drained
        arrivals = sink.arrivals()
    finally:
        web.stop()
        sink.stop()

    outcome = Counter(Job.objects.filter(id__in=accepted).values_list("status", flat=True))
    sent = Delivery.objects.filter(job_id__in=accepted, status="sent").count()
    arrived = Counter(who for _, who in arrivals)
    report = {
        kind: (len(values), percentile(values, 0.5), percentile(values, 0.99), max(values))
        for kind, values in latencies.items()
    }
    print(f"\nload: {USERS} users, {DURATION:.0f}s: {dict(statuses)}")
    for kind, (count, p50, p99, worst) in report.items():
        rate = count / DURATION
        print(
            f"  {kind}: {count} requests ({rate:.1f}/s), p50 {p50 * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms, max {worst * 1000:.0f} ms"
        )
    print(
        f"  {len(accepted)} jobs accepted, {dict(outcome)}; {sent} deliveries sent, "
        f"{len(arrived)} distinct arrivals, {sum(arrived.values()) - len(arrived)} duplicates; "
        f"the backlog drained {drain:.1f}s after the load stopped; "
        f"mean send latency {statistics.mean(latencies['send']) * 1000:.0f} ms"
    )
    assert not [k for k in statuses if k.split()[-1].startswith("5")], statuses
    assert not [k for k in statuses if "Error" in k or "Timeout" in k], statuses
    assert accepted and outcome == {"completed": len(accepted)}
    assert sent == 2 * len(accepted) == len(arrived) == sum(arrived.values())
