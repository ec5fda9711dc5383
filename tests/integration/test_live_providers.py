"""Live tests against real vendors: `@pytest.mark.live`, skipped unless credentials are set.

    TWILIO_ACCOUNT_SID=AC… TWILIO_AUTH_TOKEN=… TWILIO_FROM=+1… LIVE_SMS_TO=+233… \
        .venv/bin/pytest tests/integration -m live
    ARKESEL_API_KEY=… LIVE_SMS_TO=+233… .venv/bin/pytest tests/integration -m live
    LIVE_EMAIL_URL=smtp+tls://user:pass@smtp.example.com:587 LIVE_EMAIL_FROM=… LIVE_EMAIL_TO=…

Each sends one real message (it may cost money) or makes one refused call.
"""

import os
from typing import Any

import environ
import pytest
from django.core.mail import EmailMessage

from communication.backends import email_provider_name, get_email_backend, get_sms_backend
from communication.backends.email import classify_email_error
from communication.backends.sms.base import SmsMessage
from communication.exceptions import CommunicationError
from tests.helpers import configure

pytestmark = pytest.mark.live


def env(*names: str) -> dict[str, str]:
    """The named environment variables, or skip the test when any of them is unset."""
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        pytest.skip(f"set {', '.join(missing)} to run this live test")
    return {name: os.environ[name] for name in names}


@pytest.fixture(autouse=True)
def patient(settings: Any) -> None:
    """Real vendors get 20 s to answer."""
    configure(settings, PROVIDER_TIMEOUT=20.0)


class TestTwilioLive:
    def test_sends_a_message(self, settings: Any) -> None:
        values = env("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM", "LIVE_SMS_TO")
        configure(
            settings,
            TWILIO_ACCOUNT_SID=values["TWILIO_ACCOUNT_SID"],
            TWILIO_AUTH_TOKEN=values["TWILIO_AUTH_TOKEN"],
            SMS_SENDER_ID=values["TWILIO_FROM"],
        )
        message = SmsMessage(to=values["LIVE_SMS_TO"], body="bulk-messaging live test (Twilio)")
        assert get_sms_backend("twilio").send_messages([message]) == 1
        assert message.provider_message_id.startswith(("SM", "MM"))

    def test_a_wrong_token_is_permanent(self, settings: Any) -> None:
        values = env("TWILIO_ACCOUNT_SID", "LIVE_SMS_TO")
        configure(
            settings,
            TWILIO_ACCOUNT_SID=values["TWILIO_ACCOUNT_SID"],
            TWILIO_AUTH_TOKEN="not-the-token",
        )
        with pytest.raises(CommunicationError) as info:
            get_sms_backend("twilio").send_messages(
                [SmsMessage(to=values["LIVE_SMS_TO"], body="x")]
            )
        assert (info.value.status_code, info.value.retryable) == (401, False)


class TestArkeselLive:
    def test_sends_a_message(self, settings: Any) -> None:
        values = env("ARKESEL_API_KEY", "LIVE_SMS_TO")
        configure(
            settings,
            ARKESEL_API_KEY=values["ARKESEL_API_KEY"],
            SMS_SENDER_ID=os.environ.get("ARKESEL_SENDER_ID", "Messaging"),
        )
        message = SmsMessage(to=values["LIVE_SMS_TO"], body="bulk-messaging live test (Arkesel)")
        assert get_sms_backend("arkesel").send_messages([message]) == 1
        assert message.provider_message_id

    def test_a_wrong_api_key_is_permanent(self, settings: Any) -> None:
        values = env("ARKESEL_API_KEY", "LIVE_SMS_TO")  # only run where Arkesel is in use
        configure(settings, ARKESEL_API_KEY="not-" + values["ARKESEL_API_KEY"])
        with pytest.raises(CommunicationError) as info:
            get_sms_backend("arkesel").send_messages(
                [SmsMessage(to=values["LIVE_SMS_TO"], body="x")]
            )
        assert info.value.retryable is False


class TestSmtpLive:
    def test_sends_an_email(self, settings: Any) -> None:
        values = env("LIVE_EMAIL_URL", "LIVE_EMAIL_FROM", "LIVE_EMAIL_TO")
        for name, value in environ.Env.email_url_config(values["LIVE_EMAIL_URL"]).items():
            setattr(settings, name, value)
        backend = get_email_backend()
        email = EmailMessage(
            "bulk-messaging live test",
            "Sent by tests/integration/test_live_providers.py",
            values["LIVE_EMAIL_FROM"],
            [values["LIVE_EMAIL_TO"]],
            connection=backend,
        )
        try:
            assert backend.send_messages([email]) == 1
        except Exception as err:
            raise classify_email_error(err, email_provider_name()) from err
