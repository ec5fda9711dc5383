from typing import Any

import requests

from ...conf import get_required_setting, get_setting
from ...exceptions import CommunicationError
from .base import HttpSmsBackend, SmsMessage


class SmsBackend(HttpSmsBackend):
    """Arkesel (Ghana), SMS API v2: `POST /api/v2/sms/send` with the `api-key` header.

    Arkesel takes numbers without the leading `+` and answers `{"status": "success", "data":
    [{"recipient": "233…", "id": "…"}]}`; a 200 whose status is not success is a refusal.
    """

    provider_name = "arkesel"

    def __init__(self) -> None:
        super().__init__()
        self.api_key = get_required_setting("ARKESEL_API_KEY")
        self.url = get_setting("ARKESEL_API_URL").rstrip("/") + "/api/v2/sms/send"

    def build_request(self, message: SmsMessage) -> dict[str, Any]:
        return {
            "url": self.url,
            "json": {
                "sender": message.from_[:11],
                "message": message.body,
                "recipients": [message.to.lstrip("+")],
            },
            "headers": {"api-key": self.api_key},
        }

    def parse_message_id(self, response: requests.Response) -> str:
        body = response.json()
        if body.get("status") != "success":
            raise CommunicationError(
                f"arkesel: {body.get('message') or body}",
                provider=self.provider_name,
                status_code=response.status_code,
                response=response,
            )
        data = body.get("data") or [{}]
        return str(data[0].get("id", ""))
