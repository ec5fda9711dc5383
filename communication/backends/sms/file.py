import json
import threading
from pathlib import Path
from typing import TextIO

from django.utils import timezone

from ...conf import get_setting
from ...exceptions import ProviderConfigurationError
from .base import BaseSmsBackend, SmsMessage


class SmsBackend(BaseSmsBackend):
    """Appends each message as a JSON line to a file per session in `SMS_FILE_PATH`."""

    provider_name = "file"

    def __init__(self, file_path: str | None = None) -> None:
        self.directory = Path(file_path or get_setting("SMS_FILE_PATH"))
        self.stream: TextIO | None = None
        self._lock = threading.Lock()

    def open(self) -> bool:
        if self.stream is not None:
            return False
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ProviderConfigurationError(f"cannot create {self.directory}: {err}") from err
        name = f"{timezone.now():%Y%m%d-%H%M%S}-{id(self)}.jsonl"
        self.stream = open(self.directory / name, "a", encoding="utf-8")  # noqa: SIM115
        return True

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None

    def _send(self, message: SmsMessage) -> None:
        created = self.open()
        try:
            with self._lock:
                record = {"to": message.to, "from": message.from_, "message": message.body}
                self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")  # type: ignore[union-attr]
                self.stream.flush()  # type: ignore[union-attr]
        finally:
            if created:
                self.close()
        message.provider_message_id = f"file-{message.reference}"
