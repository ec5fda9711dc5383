from typing import Any

import requests

from ...conf import get_required_setting
from .base import HttpSmsBackend, SmsMessage


class SmsBackend(HttpSmsBackend):
    """The generic HTTP provider: `POST SMS_WEBHOOK_URL` with `{"to", "message", "from"}`.

    The delivery's reference travels in the `Idempotency-Key` header, so a provider that honours
    it can drop a repeated send.
    """

    provider_name = "webhook"

    def __init__(self) -> None:
        super().__init__()
        self.url = get_required_setting("SMS_WEBHOOK_URL")

    def build_request(self, message: SmsMessage) -> dict[str, Any]:
        return {
            "url": self.url,
            "json": {"to": message.to, "message": message.body, "from": message.from_},
            "headers": {"Idempotency-Key": message.reference} if message.reference else {},
        }

    def parse_message_id(self, response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return ""
        if isinstance(body, dict):
            return str(body.get("id") or body.get("messageId") or body.get("message_id") or "")
        return ""
