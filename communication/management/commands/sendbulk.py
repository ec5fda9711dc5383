"""`manage.py sendbulk email|sms …`: send from the command line through the same services as the
API (SPEC §5), with a live progress bar until the job is final."""

import csv
import time
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from communication.conf import get_setting
from communication.exceptions import ApplicationError
from communication.models import Channel, DeliveryStatus, Job
from communication.recipients import Recipients, normalise_email, normalise_phone
from communication.selectors import delivery_list, job_progress_get
from communication.send_responses import RESULT_STATUS
from communication.services.jobs import SendResult
from communication.services.messages import (
    SMS_MAX_LENGTH,
    message_request_send,
    recipients_check,
    recipients_screen,
)
from communication.workers import workers_by_channel, workers_inspect

DEFAULT_USERNAME = "sendbulk"
POLL_INTERVAL = 0.5
FAILURES_SHOWN = 20
RECIPIENT_COLUMNS = ("email", "phone", "recipient")
EXIT_NOT_ALL_SENT = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def read_recipients_file(path: str) -> list[tuple[str, str]]:
    """`(recipient, name)` pairs from a CSV with an email/phone column, or one recipient a line."""
    text = Path(path).read_text(encoding="utf-8-sig")
    lines = text.splitlines()
    header = [cell.strip().lower() for cell in next(csv.reader(lines[:1]), [])]
    column = next((name for name in RECIPIENT_COLUMNS if name in header), None)
    if column is None:
        return [(line.strip(), "") for line in lines if line.strip() and not line.startswith("#")]
    rows = csv.DictReader(lines, fieldnames=header)
    next(rows)
    return [((row[column] or "").strip(), (row.get("name") or "").strip()) for row in rows]


class Command(BaseCommand):
    help = (
        "Send an email or SMS to many recipients through the queue, showing a live progress bar "
        "until the job is final. Recipients come as arguments and/or --recipients-file (a CSV with "
        "an 'email' or 'phone' column and an optional 'name' column, or one recipient a line). "
        f"The job belongs to --user, by default a user named '{DEFAULT_USERNAME}' (created on "
        "first use, without a password). Exit status: 0 when every recipient was sent (with "
        "--dry-run: every recipient is valid; with --no-wait: queued, none rejected), "
        f"{EXIT_NOT_ALL_SENT} when some were rejected, failed, cancelled or of unknown outcome, "
        f"{EXIT_BAD_INPUT} for unusable input."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("channel", choices=Channel.values)
        parser.add_argument("recipients", nargs="*", help="email addresses or phone numbers")
        parser.add_argument("--recipients-file", metavar="PATH")
        parser.add_argument("--subject", default="", help="email subject (required for email)")
        message = parser.add_mutually_exclusive_group(required=True)
        message.add_argument("--message", help="HTML for email, text for SMS")
        message.add_argument("--message-file", metavar="PATH")
        parser.add_argument("--region", help="region of national phone numbers (default: setting)")
        parser.add_argument("--user", help=f"owner of the job (default: {DEFAULT_USERNAME!r})")
        parser.add_argument("--bulk", action="store_true", help="queue even a few recipients")
        parser.add_argument("--dry-run", action="store_true", help="validate only; send nothing")
        parser.add_argument("--no-wait", action="store_true", help="return once queued")

    def handle(self, *args: Any, **options: Any) -> None:
        channel = options["channel"]
        message = self._message(options)
        recipients, contexts = self._recipients(options, channel)
        self._report_validation(recipients)
        try:
            recipients_check(recipients)
        except ApplicationError as err:
            raise CommandError(err.message, returncode=EXIT_BAD_INPUT) from err
        if options["dry_run"]:
            self._dry_run(recipients, channel, options["bulk"])
            return
        sent = message_request_send(
            owner=self._owner(options["user"]),
            channel=channel,
            recipients=recipients,
            subject=options["subject"],
            message=message,
            force_queue=options["bulk"],
            recipient_contexts=contexts,
        )
        job = self._report_send(sent.result)
        if options["no_wait"] and job.is_active:
            if not get_setting("EMBEDDED"):
                self.stdout.write("Not waiting; follow it in the admin or with the progress API.")
                self._exit(not_sent=len(recipients.rejected))
                return
            self.stdout.write("Embedded mode: the job runs in this process, so it is waited for.")
        if job.is_active:
            self._warn_without_workers(job.channel)
            job = self._wait(job)
        self._summary(job)
        self._exit(not_sent=len(recipients.rejected) + job.total - job.completed_count)

    def _message(self, options: dict[str, Any]) -> str:
        message = options["message"]
        if options["message_file"]:
            message = Path(options["message_file"]).read_text(encoding="utf-8")
        if not message.strip():
            raise CommandError("The message is empty.", returncode=EXIT_BAD_INPUT)
        subject = options["subject"]
        if options["channel"] == Channel.EMAIL and not subject.strip():
            raise CommandError("An email needs --subject.", returncode=EXIT_BAD_INPUT)
        if "\r" in subject or "\n" in subject:
            raise CommandError(
                "The subject must not contain line breaks.", returncode=EXIT_BAD_INPUT
            )
        if options["channel"] == Channel.SMS and len(message) > SMS_MAX_LENGTH:
            raise CommandError(
                f"An SMS has at most {SMS_MAX_LENGTH} characters.", returncode=EXIT_BAD_INPUT
            )
        return message

    def _recipients(
        self, options: dict[str, Any], channel: str
    ) -> tuple[Recipients, dict[str, dict[str, str]]]:
        """Screened recipients (suppressed ones rejected), and each named recipient's template
        context (`{"name": …}`)."""
        pairs = [(value, "") for value in options["recipients"]]
        if options["recipients_file"]:
            try:
                pairs += read_recipients_file(options["recipients_file"])
            except (OSError, UnicodeDecodeError, csv.Error) as err:
                message = f"Cannot read the recipients file: {err}"
                raise CommandError(message, returncode=EXIT_BAD_INPUT) from err
        if not pairs:
            raise CommandError("No recipients given.", returncode=EXIT_BAD_INPUT)
        region = options["region"] or get_setting("DEFAULT_PHONE_REGION")
        contexts = {}
        for value, name in pairs:
            if not name:
                continue
            try:
                key = (
                    normalise_email(value)
                    if channel == Channel.EMAIL
                    else normalise_phone(value, region)
                )
            except ValueError:
                continue  # recipients_screen reports it
            contexts[key] = {"name": name}
        values = [v for v, _ in pairs]
        return recipients_screen(channel=channel, recipients=values, region=region), contexts

    def _report_validation(self, recipients: Recipients) -> None:
        valid, rejected = len(recipients.valid), len(recipients.rejected)
        self.stdout.write(f"{valid} valid recipient(s), {rejected} rejected.")
        for entry in recipients.rejected:
            self.stdout.write(f"  rejected {entry['recipient']!r}: {entry['reason']}")

    def _dry_run(self, recipients: Recipients, channel: str, bulk: bool) -> None:
        queued = bulk or len(recipients.valid) >= get_setting("BULK_THRESHOLD")
        how = "through the queue" if queued else "at once"
        self.stdout.write(f"Dry run: would send {channel} to {len(recipients.valid)} {how}.")
        self._exit(not_sent=len(recipients.rejected), what="would not be sent")

    def _owner(self, username: str | None) -> AbstractBaseUser:
        users = get_user_model()
        if username is None:
            user, _ = users.objects.get_or_create(
                **{users.USERNAME_FIELD: DEFAULT_USERNAME}, defaults={"password": "!"}
            )
            return user
        try:
            return users.objects.get_by_natural_key(username)
        except users.DoesNotExist as err:
            raise CommandError(f"No user {username!r}.", returncode=EXIT_BAD_INPUT) from err

    def _report_send(self, result: SendResult) -> Job:
        job = result.job
        if result.queued:
            self.stdout.write(f"Queued job {job.id} ({job.total} recipients).")
            return job
        assert result.report is not None
        self.stdout.write(f"Sent at once (job {job.id}):")
        for outcome in sorted(result.report.outcomes, key=lambda o: o.delivery.pk):
            status = RESULT_STATUS[outcome.status]
            error = f"  {outcome.error}" if outcome.error else ""
            self.stdout.write(f"  {status:<8} {outcome.delivery.recipient}{error}")
        return job

    def _warn_without_workers(self, channel: str) -> None:
        if get_setting("EMBEDDED"):
            return
        if not workers_by_channel(workers_inspect())[channel]:
            self.stderr.write(
                f"No live worker consumes the {channel!r} queue yet: the job waits for one "
                f"(celery -A messaging_site worker -Q {channel}). Ctrl-C stops waiting."
            )

    def _wait(self, job: Job) -> Job:
        """Follow the job with a progress bar (on stderr) until it is final; Ctrl-C stops."""
        stream = getattr(self.stderr, "_out", self.stderr)
        desc = f"{job.channel} {str(job.id)[:8]}"
        with tqdm(total=job.total, desc=desc, unit="msg", file=stream, dynamic_ncols=True) as bar:
            try:
                while True:
                    job.refresh_from_db()
                    counts = job_progress_get(job=job).counts
                    bar.n = counts.total - counts.active - counts.pending
                    bar.set_postfix(sent=counts.completed, failed=counts.failed, refresh=False)
                    bar.refresh()
                    if not job.is_active:
                        return job
                    time.sleep(POLL_INTERVAL)
            except KeyboardInterrupt:
                message = f"Stopped waiting; job {job.id} goes on (cancel it in the admin)."
                raise CommandError(message, returncode=EXIT_INTERRUPTED) from None

    def _summary(self, job: Job) -> None:
        self.stdout.write(
            f"Job {job.id} {job.status}: {job.completed_count} sent, {job.failed_count} failed, "
            f"{job.cancelled_count} cancelled, {job.unknown_count} unknown (of {job.total})."
        )
        for delivery in delivery_list(job=job, status=DeliveryStatus.FAILED)[:FAILURES_SHOWN]:
            self.stdout.write(f"  failed   {delivery.recipient}  {delivery.last_error}")

    def _exit(self, *, not_sent: int, what: str = "not sent") -> None:
        if not_sent:
            message = f"{not_sent} recipient(s) {what}."
            raise CommandError(message, returncode=EXIT_NOT_ALL_SENT)
