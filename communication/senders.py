"""Per-channel senders: build each recipient's message and hand it to the provider backend.

A sender is opened once per batch (one SMTP connection, one HTTP session) and sends one
delivery at a time, returning the provider's message id or raising `CommunicationError`.
Templated jobs (`Job.template`) are rendered here, at send time, from the job's shared context
and the delivery's own context, so a 100,000-recipient job stores no rendered bodies.
"""

import contextlib
from email.utils import parseaddr
from typing import Any, Protocol

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from inscriptis import get_text

from .backends import email_provider_name, get_email_backend, get_sms_backend, sms_provider_name
from .backends.email import classify_email_error
from .backends.sms.base import SmsMessage
from .backends.sms.pool import ProviderPool, is_provider_fault
from .exceptions import CommunicationError
from .models import Channel, Delivery, Job
from .stores import get_provider_pool


def html_to_text(html: str) -> str:
    """The plain-text alternative of an HTML body."""
    return get_text(html).strip()


def message_id(job: Job, delivery: Delivery, domain: str | None = None) -> str:
    """A deterministic Message-ID: a re-send of the same delivery carries the same id."""
    return f"<{job.id.hex}.{delivery.pk}@{domain or message_id_domain()}>"


def message_id_domain() -> str:
    _, at, domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")
    return domain if at and domain else "localhost"


def delivery_reference(job: Job, delivery: Delivery) -> str:
    return f"{job.id.hex}-{delivery.pk}"


class Sender(Protocol):
    """Opened once per batch. `prepare` builds a recipient's message ahead of its rate-limit
    slot, so that at the slot only `send` (the provider call) runs."""

    provider: str

    def open(self) -> None: ...

    def close(self) -> None: ...

    def prepare(self, delivery: Delivery) -> Any: ...

    def send(self, message: Any) -> str: ...


class EmailSender:
    def __init__(self, job: Job) -> None:
        self.job = job
        self.provider = email_provider_name()
        self.backend = get_email_backend()
        self.domain = message_id_domain()

    def open(self) -> None:
        try:
            self.backend.open()
        except Exception as err:
            raise classify_email_error(err, self.provider) from err

    def close(self) -> None:
        # A connection that broke mid-batch may fail to say QUIT; it is closed either way.
        with contextlib.suppress(Exception):
            self.backend.close()

    def prepare(self, delivery: Delivery) -> EmailMultiAlternatives:
        job = self.job
        context = {**(job.context or {}), **(delivery.context or {})}
        if job.template:
            html = render_to_string(f"{job.template}.html", context)
            try:
                text = render_to_string(f"{job.template}.txt", context)
            except TemplateDoesNotExist:
                text = html_to_text(html)
        else:
            html, text = job.message, job.text or html_to_text(job.message)
        headers = {
            "Message-ID": message_id(job, delivery, self.domain),
            **context.get("headers", {}),
        }
        email = EmailMultiAlternatives(
            subject=job.subject,
            body=text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[delivery.recipient],
            headers=headers,
        )
        email.attach_alternative(html, "text/html")
        return email

    def send(self, email: EmailMultiAlternatives) -> str:
        try:
            sent = self.backend.send_messages([email])
        except Exception as err:
            error = classify_email_error(err, self.provider)
            if error.retryable:
                self.close()  # the next send opens a fresh connection
            raise error from err
        if not sent:
            raise CommunicationError("the email backend sent nothing", provider=self.provider)
        status = getattr(email, "anymail_status", None)
        return getattr(status, "message_id", None) or email.extra_headers["Message-ID"]


class SmsSender:
    """Sends through `SMS_BACKEND`, or, when `SMS_PROVIDERS` is set, through one provider of the
    pool chosen for this batch (`provider` is then its alias); each send's outcome is counted
    into that provider's health."""

    def __init__(self, job: Job, pool: ProviderPool | None = None) -> None:
        self.job = job
        self.pool = pool if pool is not None else get_provider_pool()
        self.sender_id = ""
        if self.pool is None:
            self.provider = sms_provider_name()
            self.backend = get_sms_backend()
        else:
            choice = self.pool.choose()
            self.provider = choice.alias
            self.sender_id = choice.sender_id
            self.backend = self.pool.backend(choice)

    def open(self) -> None:
        self.backend.open()

    def close(self) -> None:
        self.backend.close()

    def prepare(self, delivery: Delivery) -> SmsMessage:
        return SmsMessage(
            to=delivery.recipient,
            body=self.job.message,
            from_=self.sender_id,
            reference=delivery_reference(self.job, delivery),
        )

    def send(self, message: SmsMessage) -> str:
        try:
            self.backend.send_messages([message])
        except CommunicationError as err:
            if self.pool is not None and is_provider_fault(err):
                self.pool.record(self.provider, ok=False)
            raise
        if self.pool is not None:
            self.pool.record(self.provider, ok=True)
        return message.provider_message_id


def sender_for(job: Job) -> Sender:
    return EmailSender(job) if job.channel == Channel.EMAIL else SmsSender(job)


def provider_for(channel: str) -> str:
    return email_provider_name() if channel == Channel.EMAIL else sms_provider_name()
