"""Delivery receipts: what providers report after a send, and the suppressions they cause.

A receipt finds its delivery by the provider it was handed to (`Delivery.provider`: the
provider's alias in `SMS_PROVIDERS`, the SMS backend's name, or the email backend's) and the id
that provider gave the message. Receipts never touch `Delivery.status` (our send outcome).
Email receipts arrive through anymail's tracking webhooks (the `tracking` signal, below); SMS
receipts through `communication.webhooks`.
"""

import logging
from datetime import datetime
from typing import Any

from anymail.signals import AnymailTrackingEvent, EventType, tracking
from django.db.models import Count
from django.dispatch import receiver
from django.utils import timezone

from .backends import email_provider_name
from .models import Channel, Delivery, Job, ReceiptStatus, SuppressionReason
from .suppression import suppression_add

logger = logging.getLogger(__name__)

# A later receipt never replaces one of higher rank (a late "delivered" after a bounce).
RANK = {
    ReceiptStatus.DELIVERED: 1,
    ReceiptStatus.UNDELIVERABLE: 2,
    ReceiptStatus.BOUNCED: 3,
    ReceiptStatus.COMPLAINED: 4,
}

# The suppression a receipt causes; SMS "undeliverable" may be a phone switched off: none.
SUPPRESSION_OF_RECEIPT = {
    ReceiptStatus.BOUNCED: SuppressionReason.BOUNCED,
    ReceiptStatus.COMPLAINED: SuppressionReason.COMPLAINED,
}


def delivery_receipt_counts(job: Job) -> dict[str, int]:
    """Receipts of a job by status, in one GROUP BY over the receipts index only.

    Every progress poll asks for this, so it is a values query: compiling an aggregate with one
    filtered COUNT per status took longer than running it.
    """
    rows = (
        Delivery.objects.filter(job=job)
        .exclude(receipt_status="")
        .values_list("receipt_status")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = dict.fromkeys(ReceiptStatus.values, 0)
    counts.update(rows)
    return counts


def delivery_receipt_record(
    *, providers: list[str], message_id: str, status: str, at: datetime | None = None
) -> int:
    """Store receipt `status` on the delivery `providers` know as `message_id`.

    Returns how many deliveries were updated (0 for an unknown id or a lower-ranked receipt).
    """
    if not message_id:
        return 0
    higher = [s for s, rank in RANK.items() if rank > RANK[ReceiptStatus(status)]]
    return (
        Delivery.objects.filter(provider__in=providers, provider_message_id=message_id)
        .exclude(provider_message_id="")
        .exclude(receipt_status__in=higher)
        .update(receipt_status=status, receipt_at=at or timezone.now())
    )


# anymail event type -> receipt status
EMAIL_RECEIPTS = {
    EventType.DELIVERED: ReceiptStatus.DELIVERED,
    EventType.BOUNCED: ReceiptStatus.BOUNCED,
    EventType.COMPLAINED: ReceiptStatus.COMPLAINED,
    EventType.REJECTED: ReceiptStatus.UNDELIVERABLE,
}
# A rejection for these reasons means the address itself is bad: suppress it like a bounce.
BOUNCE_REJECT_REASONS = {"bounced", "invalid"}


def _soft_bounce(event: AnymailTrackingEvent) -> bool:
    """A temporary bounce that some ESPs report as `bounced` (Postmark, Amazon SES)."""
    esp_event = event.esp_event if isinstance(event.esp_event, dict) else {}
    bounce = esp_event.get("bounce")
    ses_type = bounce.get("bounceType") if isinstance(bounce, dict) else None
    return esp_event.get("Type") == "SoftBounce" or ses_type == "Transient"


def email_receipt_record(event: AnymailTrackingEvent, esp_name: str) -> None:
    """Apply one anymail tracking event: receipt status, and suppression where due.

    Only a hard bounce suppresses; a soft one is recorded as undeliverable.
    """
    source = f"anymail:{esp_name}"
    status = EMAIL_RECEIPTS.get(event.event_type)
    if status == ReceiptStatus.BOUNCED and _soft_bounce(event):
        status = ReceiptStatus.UNDELIVERABLE
    esp = esp_name.lower().replace(" ", "_")  # "Amazon SES" -> amazon_ses, the backend module
    if status:
        updated = delivery_receipt_record(
            providers=sorted({esp, email_provider_name()}),
            message_id=str(event.message_id or ""),
            status=status,
            at=event.timestamp,
        )
        logger.info("%s receipt %s for %s: %d updated", source, status, event.message_id, updated)
    address = event.recipient or ""
    if event.event_type == EventType.UNSUBSCRIBED:
        reason: str | None = SuppressionReason.UNSUBSCRIBED
    elif event.event_type == EventType.REJECTED and event.reject_reason in BOUNCE_REJECT_REASONS:
        reason = SuppressionReason.BOUNCED
    else:
        reason = SUPPRESSION_OF_RECEIPT.get(status) if status else None
    if reason and address:
        suppression_add(channel=Channel.EMAIL, address=address, reason=reason, source=source)


@receiver(tracking, dispatch_uid="communication.receipts.email")
def _on_anymail_tracking(sender: Any, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any):
    email_receipt_record(event, esp_name)
