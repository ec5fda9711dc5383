import sys
import threading
from typing import TextIO

from .base import BaseSmsBackend, SmsMessage


class SmsBackend(BaseSmsBackend):
    """Writes each message to a stream (stdout by default): for development."""

    provider_name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def _send(self, message: SmsMessage) -> None:
        with self._lock:
            self.stream.write(f"SMS from {message.from_} to {message.to}:\n{message.body}\n")
            self.stream.write("-" * 79 + "\n")
            self.stream.flush()
        message.provider_message_id = f"console-{message.reference}"
