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
        path = file_path or get_setting("SMS_FILE_PATH")
        if not path:
            raise ProviderConfigurationError(
                "Set SMS_FILE_PATH (COMMUNICATION['SMS_FILE_PATH']) to use the file SMS backend",
                provider=self.provider_name,
            )
        self.directory = Path(path)
        self.stream: TextIO | None = None
        self._lock = threading.Lock()

    def open(self) -> bool:
        if self.stream is not None:
            return False
        name = f"{timezone.now():%Y%m%d-%H%M%S}-{id(self)}.jsonl"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.stream = open(self.directory / name, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as err:
            raise ProviderConfigurationError(
                f"SMS_FILE_PATH {str(self.directory)!r} is not writable: {err}",
                provider=self.provider_name,
            ) from err
        return True

    def close(self) -> None:
        if self.stream is not None:
            stream, self.stream = self.stream, None
            stream.close()

    def _send(self, message: SmsMessage) -> None:
        created = self.open()
        try:
            record = {"to": message.to, "from": message.from_, "message": message.body}
            with self._lock:
                assert self.stream is not None
                self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")
                self.stream.flush()
        finally:
            if created:
                self.close()
        message.provider_message_id = f"file-{message.reference}"
