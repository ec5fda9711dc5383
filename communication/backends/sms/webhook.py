from typing import Any

import requests

from .base import HttpSmsBackend, SmsMessage, required_setting


class SmsBackend(HttpSmsBackend):
    """The generic HTTP provider: `POST SMS_WEBHOOK_URL` with `{"to", "message", "from"}`.

    The delivery's reference travels in the `Idempotency-Key` header, so a provider that honours
    it can drop a repeated send. A JSON reply's `id` (or `messageId`, `message_id`) is kept as
    the provider's message id. `url` overrides the setting (several providers, see `providers`).
    """

    provider_name = "webhook"

    def __init__(self, url: str | None = None) -> None:
        super().__init__()
        self.url = url or required_setting("SMS_WEBHOOK_URL", self.provider_name)

    def build_request(self, message: SmsMessage) -> dict[str, Any]:
        return {
            "url": self.url,
            "json": {"to": message.to, "message": message.body, "from": message.from_},
            "headers": {"Idempotency-Key": message.reference} if message.reference else {},
        }

    def parse_message_id(self, response: requests.Response) -> str:
        if not response.content:
            return ""
        body = response.json()
        if isinstance(body, dict):
            return str(body.get("id") or body.get("messageId") or body.get("message_id") or "")
        return ""
