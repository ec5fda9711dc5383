from typing import Any

import requests

from ...conf import get_required_setting, get_setting
from .base import HttpSmsBackend, SmsMessage


class SmsBackend(HttpSmsBackend):
    """Twilio's Programmable Messaging REST API (`POST …/Accounts/{sid}/Messages.json`)."""

    provider_name = "twilio"

    def __init__(self) -> None:
        super().__init__()
        self.account_sid = get_required_setting("TWILIO_ACCOUNT_SID")
        self.auth_token = get_required_setting("TWILIO_AUTH_TOKEN")
        base = get_setting("TWILIO_API_URL").rstrip("/")
        self.url = f"{base}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def build_request(self, message: SmsMessage) -> dict[str, Any]:
        return {
            "url": self.url,
            "data": {"To": message.to, "From": message.from_, "Body": message.body},
            "auth": (self.account_sid, self.auth_token),
        }

    def parse_message_id(self, response: requests.Response) -> str:
        return str(response.json().get("sid", ""))
