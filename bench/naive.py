"""The naive baseline: one Celery task per recipient, as a first implementation would do it.

Each task loads its delivery row, sends one email with Django's `EmailMessage` over
`settings.EMAIL_BACKEND` (a new connection per message, as `send_mail` does) and saves the row
(one UPDATE per send). Its worker runs with `-I bench.naive` on its own `naive` queue.
"""

from celery import shared_task
from django.core.mail import EmailMessage
from django.utils import timezone

QUEUE = "naive"


@shared_task(name="bench.naive_send", ignore_result=True)
def naive_send(delivery_id: int) -> None:
    from communication.models import Delivery, DeliveryStatus

    delivery = Delivery.objects.select_related("job").get(id=delivery_id)
    job = delivery.job
    EmailMessage(subject=job.subject, body=job.text, to=[delivery.recipient]).send()
    delivery.status = DeliveryStatus.SENT
    delivery.sent_at = timezone.now()
    delivery.attempts += 1
    delivery.save(update_fields=["status", "sent_at", "attempts", "updated_at"])


def naive_enqueue(delivery_ids: list[int]) -> None:
    """One task per recipient, through one producer (enqueueing is not what is measured)."""
    from messaging_site.celery import app

    with app.producer_or_acquire() as producer:
        for delivery_id in delivery_ids:
            naive_send.apply_async((delivery_id,), queue=QUEUE, producer=producer)
