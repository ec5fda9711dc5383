from typing import Any

import requests

from ...conf import get_setting
from .base import HttpSmsBackend, SmsMessage, required_setting


class SmsBackend(HttpSmsBackend):
    """Twilio's Programmable Messaging REST API (`POST …/Accounts/{sid}/Messages.json`).

    Form fields `To`, `From`, `Body` with HTTP basic auth (account SID, auth token); Twilio
    answers 201 with the message resource, whose `sid` is the provider's message id.
    """

    provider_name = "twilio"

    def __init__(
        self,
        account_sid: str | None = None,
        auth_token: str | None = None,
        url: str | None = None,
    ) -> None:
        """Credentials and API base URL default to the TWILIO_* settings."""
        super().__init__()
        self.account_sid = account_sid or required_setting("TWILIO_ACCOUNT_SID", self.provider_name)
        self.auth_token = auth_token or required_setting("TWILIO_AUTH_TOKEN", self.provider_name)
        base = (url or get_setting("TWILIO_API_URL")).rstrip("/")
        self.url = f"{base}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def build_request(self, message: SmsMessage) -> dict[str, Any]:
        return {
            "url": self.url,
            "data": {"To": message.to, "From": message.from_, "Body": message.body},
            "auth": (self.account_sid, self.auth_token),
        }

    def parse_message_id(self, response: requests.Response) -> str:
        body = response.json()
        return str(body.get("sid") or "") if isinstance(body, dict) else ""
