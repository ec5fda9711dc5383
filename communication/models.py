import uuid

from django.conf import settings
from django.db import models


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors", "Completed with errors"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    RETRY = "retry", "Waiting to retry"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    UNKNOWN = "unknown", "Unknown outcome"


UNSENT_DELIVERY_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.RETRY)
OPEN_DELIVERY_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.RETRY)


class ReceiptStatus(models.TextChoices):
    """What the provider reported after the send (delivery receipt), in rising precedence."""

    DELIVERED = "delivered", "Delivered"
    UNDELIVERABLE = "undeliverable", "Undeliverable"
    BOUNCED = "bounced", "Bounced"
    COMPLAINED = "complained", "Complained"


class Job(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs"
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    status = models.CharField(max_length=32, choices=JobStatus.choices, default=JobStatus.QUEUED)
    subject = models.CharField(max_length=998, blank=True)
    message = models.TextField(help_text="HTML for email, text for SMS.")
    text = models.TextField(blank=True, help_text="Plain-text alternative of an email.")
    template = models.CharField(
        max_length=200,
        blank=True,
        help_text="Template rendered per recipient at send time, instead of the stored message.",
    )
    context = models.JSONField(
        null=True, blank=True, help_text="Template context shared by every recipient."
    )
    queued = models.BooleanField(default=True)
    total = models.PositiveIntegerField(default=0)
    completed_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    cancelled_count = models.PositiveIntegerField(default=0)
    unknown_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"]), models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} job {self.id}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_JOB_STATUSES


class Delivery(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="deliveries")
    recipient = models.CharField(max_length=320)
    context = models.JSONField(null=True, blank=True, help_text="Per-recipient template context.")
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    provider = models.CharField(max_length=100, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    receipt_status = models.CharField(max_length=16, choices=ReceiptStatus.choices, blank=True)
    receipt_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["job", "recipient"], name="unique_recipient_per_job")
        ]
        indexes = [
            models.Index(fields=["job", "status", "id"]),
            # Only rows in flight: recording a batch finds them by claim, recovery by lease.
            models.Index(
                fields=["claim_token"],
                name="delivery_in_flight",
                condition=models.Q(claim_token__isnull=False),
            ),
            models.Index(
                fields=["lease_expires_at"],
                name="delivery_leases",
                condition=models.Q(status="sending"),
            ),
            # Receipts find their delivery by the provider's message id.
            models.Index(
                fields=["provider", "provider_message_id"],
                name="delivery_provider_message_id",
                condition=~models.Q(provider_message_id=""),
            ),
            # Progress counts receipts per job without touching rows that have none.
            models.Index(
                fields=["job", "receipt_status"],
                name="delivery_receipts",
                condition=~models.Q(receipt_status=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.recipient} ({self.status})"


class SuppressionReason(models.TextChoices):
    BOUNCED = "bounced", "Hard bounce"
    COMPLAINED = "complained", "Spam complaint"
    OPTED_OUT = "opted_out", "Opted out (STOP)"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"


class Suppression(models.Model):
    """An address that later jobs skip (reported in `rejected`) until staff lift it."""

    channel = models.CharField(max_length=8, choices=Channel.choices)
    address = models.CharField(max_length=320, help_text="Lower-cased email, or E.164 number.")
    reason = models.CharField(max_length=16, choices=SuppressionReason.choices)
    source = models.CharField(max_length=100, blank=True, help_text="Who reported it.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "address"], name="unique_suppression")
        ]

    def __str__(self) -> str:
        return f"{self.address} ({self.reason})"
