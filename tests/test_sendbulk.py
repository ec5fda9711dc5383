"""`manage.py sendbulk`: arguments, files, dry runs, exit codes and the progress bar."""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import CommandError, call_command

from communication.backends.sms import locmem
from communication.models import Delivery, Job
from communication.suppression import suppression_add

from .helpers import addresses, configure, use_smtp

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(60)  # a send that waits for a worker that never comes


def sendbulk(*args: str, **options: object) -> tuple[str, str]:
    """Run the command; returns (stdout, stderr). A non-zero exit raises CommandError."""
    out, err = StringIO(), StringIO()
    call_command("sendbulk", *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def exit_code(*args: str, **options: object) -> tuple[int, str]:
    with pytest.raises(CommandError) as raised:
        sendbulk(*args, **options)
    return raised.value.returncode, str(raised.value)


@pytest.mark.django_db
def test_email_to_recipients_given_as_arguments(settings):
    out, _ = sendbulk(
        "email", "a@example.com", "B@Example.com", subject="Hello", message="<p>Hi <b>you</b></p>"
    )

    assert sorted(m.to[0] for m in mail.outbox) == ["B@example.com", "a@example.com"]
    assert mail.outbox[0].subject == "Hello"
    assert "2 valid recipient(s), 0 rejected." in out
    assert "sent     a@example.com" in out
    job = Job.objects.get()
    assert (job.owner.username, job.queued, job.status) == ("sendbulk", False, "completed")
    assert f"Job {job.id} completed: 2 sent, 0 failed" in out


@pytest.mark.django_db
def test_sms_with_a_rejected_number_exits_1(user):
    code, error = exit_code("sms", "0241234567", "+233201112223", "12", message="Sale", user="ama")

    assert code == 1 and "1 recipient(s) not sent" in error
    assert sorted(m.to for m in locmem.outbox) == ["+233201112223", "+233241234567"]
    assert Job.objects.get().owner == user


@pytest.mark.django_db
def test_csv_file_with_email_and_name_columns(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("name,email\nAma,ama@example.com\nKofi,kofi@example.com\n,x@example.com\n")

    sendbulk("email", recipients_file=str(path), subject="Deals", message="<p>Deals</p>")

    contexts = dict(Delivery.objects.values_list("recipient", "context"))
    assert contexts == {
        "ama@example.com": {"name": "Ama"},
        "kofi@example.com": {"name": "Kofi"},
        "x@example.com": None,
    }
    assert len(mail.outbox) == 3


@pytest.mark.django_db
def test_text_file_and_message_file_for_sms(tmp_path):
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("# customers\n0241234567\n\n0201112223\n0241234567\n")
    body = tmp_path / "body.txt"
    body.write_text("Sale today")

    sendbulk("sms", recipients_file=str(numbers), message_file=str(body))

    assert sorted((m.to, m.body) for m in locmem.outbox) == [
        ("+233201112223", "Sale today"),
        ("+233241234567", "Sale today"),
    ]


@pytest.mark.django_db
def test_dry_run_validates_and_creates_nothing(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("\n".join(["email", *addresses(12, prefix="u"), "bad@"]) + "\n")
    users = get_user_model().objects.count()

    code, error = exit_code("email", recipients_file=str(path), subject="S", message="M", dry_run=1)

    assert code == 1 and "1 recipient(s) would not be sent" in error
    assert Job.objects.count() == 0 and get_user_model().objects.count() == users
    assert mail.outbox == []


@pytest.mark.django_db
def test_dry_run_of_valid_recipients_succeeds(redis_server):
    out, _ = sendbulk("sms", "0241234567", message="Hi", dry_run=True, bulk=True)

    assert "1 valid recipient(s), 0 rejected." in out
    assert "Dry run: would send sms to 1 through the queue." in out
    assert locmem.outbox == [] and Job.objects.count() == 0
    assert redis_server.client().dbsize() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "options", "expected"),
    [
        (["email", "nope"], {"subject": "S", "message": "M"}, "No valid recipients"),
        (["email"], {"subject": "S", "message": "M"}, "No recipients given"),
        (["email", "a@example.com"], {"message": "M"}, "needs --subject"),
        (["email", "a@example.com"], {"subject": "a\nb", "message": "M"}, "line breaks"),
        (["sms", "0241234567"], {"message": "x" * 1601}, "at most 1600"),
        (["sms", "0241234567"], {"message": "M", "user": "nobody"}, "No user 'nobody'"),
        (["sms", "0241234567"], {"message": "M", "recipients_file": "/nonexistent"}, "Cannot"),
    ],
)
def test_unusable_input_exits_2(args, options, expected):
    code, error = exit_code(*args, **options)

    assert code == 2 and expected in error
    assert Job.objects.count() == 0


@pytest.mark.django_db
def test_a_permanent_failure_exits_1_and_is_listed(settings, smtp_server):
    use_smtp(settings, smtp_server.port)
    smtp_server.failures.add("gone@example.com", 550)

    code, error = exit_code("email", "ok@example.com", "gone@example.com", subject="S", message="M")

    assert code == 1 and "1 recipient(s) not sent" in error
    assert smtp_server.recipients() == ["ok@example.com"]


@pytest.mark.django_db
def test_no_wait_returns_once_queued():
    out, err = sendbulk("email", "a@example.com", subject="S", message="M", bulk=True, no_wait=True)

    job = Job.objects.get()
    assert job.queued and job.status == "queued"
    assert f"Queued job {job.id} (1 recipients)." in out and "Not waiting" in out
    assert "No live worker" not in err


@pytest.mark.slow
def test_progress_bar_follows_a_queued_job_on_a_real_worker(service, tmp_path):
    service.configure(EMAIL_RATE_LIMIT="40/s", EMAIL_BATCH_DELAY=0, EMAIL_BATCH_SIZE=5)
    service.start_worker(queues="email")
    path = tmp_path / "list.txt"
    path.write_text("\n".join(addresses(12)) + "\n")

    out, err = sendbulk("email", recipients_file=str(path), subject="S", message="<p>M</p>")

    job = Job.objects.get()
    assert f"Queued job {job.id} (12 recipients)." in out
    assert f"Job {job.id} completed: 12 sent, 0 failed, 0 cancelled, 0 unknown (of 12)." in out
    assert "12/12" in err and "100%" in err and "sent=12" in err
    assert "No live worker" not in err
    assert sorted(service.smtp.recipients()) == sorted(path.read_text().split())


@pytest.mark.django_db(transaction=True)
def test_embedded_mode_waits_for_the_job_in_a_thread(settings, tmp_path):
    configure(settings, EMBEDDED=True, EMAIL_RATE_LIMIT="100/s", EMAIL_BATCH_DELAY=0)
    recipients = addresses(15)

    out, err = sendbulk("email", *recipients, subject="S", message="M", no_wait=True)

    assert "Embedded mode" in out and "completed: 15 sent" in out
    assert "15/15" in err
    assert sorted(m.to[0] for m in mail.outbox) == sorted(recipients)


@pytest.fixture(scope="module")
def embedded_env(tmp_path_factory) -> dict[str, str]:
    """A fresh process's environment: embedded mode on a database of its own (a dry run
    reads the suppression list)."""
    database = tmp_path_factory.mktemp("sendbulk") / "db.sqlite3"
    env = {**os.environ, "MESSAGING_EMBEDDED": "true", "DATABASE_URL": f"sqlite:///{database}"}
    migrate = [sys.executable, "manage.py", "migrate", "--verbosity", "0"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True)
    return env


@pytest.mark.parametrize(
    ("args", "code"), [(["0241234567", "12"], 1), (["12"], 2), (["0241234567"], 0)]
)
def test_exit_status_of_the_process(args, code, embedded_env):
    env = embedded_env
    command = [sys.executable, "manage.py", "sendbulk", "sms", *args, "--message=M", "--dry-run"]

    process = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)

    assert process.returncode == code, process.stderr


@pytest.mark.django_db
def test_a_suppressed_address_is_skipped(settings):
    suppression_add(channel="email", address="Bounced@Example.com", reason="bounced")

    code, error = exit_code(
        "email", "bounced@example.com", "ok@example.com", subject="Hi", message="<p>Hi</p>"
    )

    assert code == 1 and "1 recipient(s) not sent" in error
    assert [m.to[0] for m in mail.outbox] == ["ok@example.com"]
    assert list(Delivery.objects.values_list("recipient", flat=True)) == ["ok@example.com"]


@pytest.mark.django_db
def test_a_dry_run_reports_suppressed_addresses():
    suppression_add(channel="email", address="bounced@example.com", reason="bounced")

    code, _ = exit_code(
        "email", "bounced@example.com", subject="Hi", message="<p>Hi</p>", dry_run=True
    )

    assert code == 2  # nobody is left to send to
    assert not Job.objects.exists()
