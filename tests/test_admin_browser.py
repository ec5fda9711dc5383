"""The jobs dashboard: pages and actions with Django's test client, then live in a real browser.

The browser test drives Debian's chromium through Playwright (no `playwright install`) against
`live_server` and a real worker, and saves screenshots to test-artifacts/.
"""

import re
import shutil
from pathlib import Path

import pytest

from communication.models import DeliveryStatus, Job, JobStatus
from communication.services.jobs import message_send

from .factories import AdminFactory, DeliveryFactory, JobFactory, UserFactory
from .helpers import addresses
from .servers import wait_until

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
JOBS = "/admin/communication/job/"
# No CSS transition (the progress bars' width) is running: the page is ready for a screenshot.
NOT_ANIMATING = "() => document.getAnimations().length === 0"


@pytest.fixture
def superuser(db):
    return AdminFactory(username="root", password="pw-root-123")


def test_job_list_has_bars_counts_and_filters(client, superuser):
    client.force_login(superuser)
    running = JobFactory(owner=superuser, size=4)
    done = JobFactory(owner=superuser, size=2, status=JobStatus.COMPLETED, completed_count=2)

    page = client.get(JOBS).content.decode()
    filtered = client.get(JOBS, {"status__exact": "completed", "channel__exact": "email"})

    assert f'data-job="{running.id}" data-url="/api/communication/email/progress?jobId=' in page
    assert 'data-active="true"' in page and 'data-active="false"' in page
    assert "communication/progress.js" in page
    for query in ("status__exact=", "channel__exact=", "created_at__gte="):
        assert query in page  # the three filters
    assert str(done.id) in filtered.content.decode()
    assert str(running.id) not in filtered.content.decode()
    assert client.get(JOBS, {"q": str(running.id)}).context["cl"].result_count == 1


def test_job_page_lists_recipients_by_status_and_page(client, superuser):
    client.force_login(superuser)
    job = JobFactory(owner=superuser, size=60)
    DeliveryFactory(
        job=job,
        recipient="user7@example.com",
        status=DeliveryStatus.FAILED,
        last_error="550 No such user",
    )
    url = f"{JOBS}{job.id}/change/"

    first = client.get(url)
    failed = client.get(url, {"status": "failed"}).content.decode()
    second = client.get(url, {"p": 2}).content.decode()

    assert first.context["deliveries"].paginator.num_pages == 2
    assert "Page 1 of 2" in first.content.decode() and "Page 2 of 2" in second
    assert "Failed (1)" in first.content.decode() and "Pending (59)" in first.content.decode()
    assert failed.count('<tr data-status="') == 1 and "550 No such user" in failed
    assert 'value="Cancel job"' in first.content.decode()
    assert 'value="Retry failed recipients"' in first.content.decode()
    assert client.get(f"/admin/communication/delivery/?job={job.id}").status_code == 200


def test_cancel_and_retry_actions_call_the_services(client, superuser):
    client.force_login(superuser)
    queued = JobFactory(owner=superuser, size=3)
    finished = JobFactory(owner=superuser, size=1, status=JobStatus.COMPLETED, completed_count=1)
    ids = [str(queued.id), str(finished.id)]

    response = client.post(JOBS, {"action": "cancel_jobs", "_selected_action": ids}, follow=True)

    text = response.content.decode()
    assert f"Job {queued.id}: cancelled." in text
    assert f"Job {finished.id}: job is already completed" in text
    assert Job.objects.get(id=queued.id).status == JobStatus.CANCELLED
    assert set(queued.deliveries.values_list("status", flat=True)) == {DeliveryStatus.CANCELLED}
    retry = {"action": "retry_failed_jobs", "_selected_action": [str(finished.id)]}
    text = client.post(JOBS, retry, follow=True).content.decode()
    assert "the job has no failed recipients to retry" in text


def test_cancel_button_of_the_job_page(client, superuser):
    client.force_login(superuser)
    job = JobFactory(owner=superuser, size=3)

    assert client.get(f"{JOBS}{job.id}/cancel/").status_code == 405
    response = client.post(f"{JOBS}{job.id}/cancel/")

    assert response.status_code == 302 and response["Location"] == f"{JOBS}{job.id}/change/"
    assert Job.objects.get(id=job.id).status == JobStatus.CANCELLED


def test_staff_without_change_permission_cannot_cancel(client, db):
    staff = UserFactory(username="staff", is_staff=True)
    client.force_login(staff)
    job = JobFactory(owner=staff, size=1)

    assert client.post(f"{JOBS}{job.id}/cancel/").status_code == 403
    assert client.get(f"{JOBS}queues/").status_code == 403
    assert Job.objects.get(id=job.id).status == JobStatus.QUEUED


def test_queue_page_is_linked_from_the_index(client, superuser, redis_server):
    client.force_login(superuser)
    redis_server.client().rpush("sms", b"task", b"task")

    index = client.get("/admin/").content.decode()
    page = client.get(f"{JOBS}queues/").content.decode()

    assert f'href="{JOBS}queues/"' in index
    assert re.search(r'data-queue="sms".*?data-pending>2<', page, re.S)
    assert "No live worker answered" in page


def test_queue_page_when_redis_is_down(client, superuser, redis_server):
    client.force_login(superuser)
    redis_server.stop()
    try:
        response = client.get(f"{JOBS}queues/")
    finally:
        redis_server.start()

    assert response.status_code == 200
    assert "Redis is unavailable" in response.content.decode()


def _browser():
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    return playwright_api.sync_playwright


@pytest.mark.slow
def test_dashboard_in_a_browser(service, live_server):
    sync_playwright = _browser()
    service.configure(EMAIL_RATE_LIMIT="5/s", EMAIL_BATCH_DELAY=0)
    service.smtp.failures.add("gone@example.com", 550)
    service.start_worker(queues="email,sms")
    admin = AdminFactory(username="root", password="pw-root-123")
    small = ["ok@example.com", "gone@example.com"]
    message_send(owner=admin, channel="email", recipients=small, subject="Hello", message="Hi")
    recipients = addresses(40)
    job = message_send(
        owner=admin, channel="email", recipients=recipients, subject="Weekly deals", message="M"
    ).job
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{live_server.url}/admin/login/?next={JOBS}")
        page.fill("#id_username", "root")
        page.fill("#id_password", "pw-root-123")
        page.click("input[type=submit]")
        page.wait_for_url(f"**{JOBS}")

        progress = page.locator(f'[data-job="{job.id}"][data-field="progress"]')
        first = float(progress.inner_text())
        page.evaluate("window.notReloaded = true")
        page.wait_for_function(
            f"""() => parseFloat(document.querySelector(
                '[data-job="{job.id}"][data-field="progress"]').textContent) > {first} + 10""",
            timeout=15_000,
        )
        assert page.evaluate("window.notReloaded") is True  # the bar moved without a reload
        sent = int(page.locator(f'[data-job="{job.id}"][data-field="completed"]').inner_text())
        assert sent > 0
        page.wait_for_function(NOT_ANIMATING)  # the bars animate their width
        page.screenshot(path=ARTIFACTS / "admin-job-list.png", full_page=True)

        page.click(f'a[href="{JOBS}{job.id}/change/"]')
        page.wait_for_selector("#job-recipients tbody tr")
        assert page.locator("#job-recipients tbody tr").count() == 40
        assert "sent" in page.inner_text(".field-outcomes")
        page.wait_for_function(NOT_ANIMATING)
        page.screenshot(path=ARTIFACTS / "admin-job-page.png", full_page=True)

        page.goto(f"{live_server.url}{JOBS}")
        page.check(f'input[name="_selected_action"][value="{job.id}"]')
        page.select_option('select[name="action"]', "cancel_jobs")
        page.click('button[name="index"]')
        page.wait_for_selector(".messagelist")
        assert f"Job {job.id}: cancelled." in page.inner_text(".messagelist")
        page.screenshot(path=ARTIFACTS / "admin-job-cancelled.png", full_page=True)

        page.goto(f"{live_server.url}/admin/")
        page.screenshot(path=ARTIFACTS / "admin-index.png", full_page=True)
        page.click("text=Queues and workers")
        page.wait_for_selector("#queues")
        assert page.locator('[data-queue="email"] [data-live="true"]').count() == 1
        page.screenshot(path=ARTIFACTS / "admin-queues.png", full_page=True)
        browser.close()

    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    wait_until(lambda: not job.deliveries.filter(status="sending").exists(), 10)
    cancelled = set(job.deliveries.filter(status=DeliveryStatus.CANCELLED).values_list("recipient"))
    assert cancelled
    assert not cancelled & {(r,) for r in service.smtp.recipients()}  # never sent
