"""Keeps messages in `outbox`, like Django's locmem email backend: for tests."""

import threading

from .base import BaseSmsBackend, SmsMessage

outbox: list[SmsMessage] = []
_lock = threading.Lock()


class SmsBackend(BaseSmsBackend):
    provider_name = "locmem"

    def _send(self, message: SmsMessage) -> None:
        with _lock:
            message.provider_message_id = f"locmem-{len(outbox) + 1}"
            outbox.append(message)
