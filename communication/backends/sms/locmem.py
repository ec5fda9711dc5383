"""Keeps messages in `outbox`, like Django's locmem email backend: for tests."""

from .base import BaseSmsBackend, SmsMessage

outbox: list[SmsMessage] = []


class SmsBackend(BaseSmsBackend):
    provider_name = "locmem"

    def _send(self, message: SmsMessage) -> None:
        message.provider_message_id = f"locmem-{len(outbox) + 1}"
        outbox.append(message)
