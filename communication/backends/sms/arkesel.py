from typing import Any

import requests

from ...conf import get_setting
from ...exceptions import CommunicationError
from .base import HttpSmsBackend, SmsMessage, required_setting

SENDER_ID_MAX_LENGTH = 11


class SmsBackend(HttpSmsBackend):
    """Arkesel (Ghana), SMS API v2: `POST /api/v2/sms/send` with the `api-key` header.

    Arkesel takes numbers without the leading `+` and answers `{"status": "success", "data":
    [{"recipient": "233…", "id": "…"}]}`; a 2xx whose status is not success is a refusal.
    """

    provider_name = "arkesel"

    def __init__(self, api_key: str | None = None, url: str | None = None) -> None:
        """The API key and base URL default to the ARKESEL_* settings."""
        super().__init__()
        self.api_key = api_key or required_setting("ARKESEL_API_KEY", self.provider_name)
        self.url = (url or get_setting("ARKESEL_API_URL")).rstrip("/") + "/api/v2/sms/send"

    def build_request(self, message: SmsMessage) -> dict[str, Any]:
        return {
            "url": self.url,
            "json": {
                "sender": message.from_[:SENDER_ID_MAX_LENGTH],
                "message": message.body,
                "recipients": [message.to.lstrip("+")],
            },
            "headers": {"api-key": self.api_key},
        }

    def parse_message_id(self, response: requests.Response) -> str:
        body = response.json()
        if not isinstance(body, dict) or body.get("status") != "success":
            detail = body.get("message") if isinstance(body, dict) else None
            raise CommunicationError(
                f"arkesel: {detail or body}",
                provider=self.provider_name,
                status_code=response.status_code,
                response=response,
            )
        data = body.get("data") or [{}]
        first = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
        return str(first.get("id") or "")
