"""The recipient path that every way of sending shares: parse → suppress → check → send.

The email and SMS APIs, `manage.py sendbulk` and the best-deals campaign each call
`message_request_send` (the command line screens and checks first, for its report and dry run),
so every path validates recipients the same way, skips the suppression list and respects the
same limits.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from ..conf import get_setting
from ..exceptions import ApplicationError
from ..recipients import Recipients, recipients_parse
from ..suppression import recipients_suppress
from .jobs import SendResult, message_send

SMS_MAX_LENGTH = 1600


@dataclass
class MessageRequestResult:
    result: SendResult
    rejected: list[dict[str, str]]  # recipients not sent: invalid, duplicate or suppressed


def recipients_screen(
    *, channel: str, recipients: Sequence[str] | Recipients, region: str | None = None
) -> Recipients:
    """Parse raw recipients (or take already parsed ones) and move suppressed ones into
    `rejected` ("suppressed: <reason>")."""
    if not isinstance(recipients, Recipients):
        region = region or get_setting("DEFAULT_PHONE_REGION")
        recipients = recipients_parse(recipients, channel=channel, region=region)
    return recipients_suppress(recipients, channel)


def recipients_check(recipients: Recipients) -> None:
    """Raise ApplicationError (400) when no valid recipient is left, or more than
    `MAX_RECIPIENTS_PER_REQUEST`."""
    if not recipients.valid:
        raise ApplicationError("No valid recipients.", {"rejected": recipients.rejected})
    limit = get_setting("MAX_RECIPIENTS_PER_REQUEST")
    if len(recipients.valid) > limit:
        raise ApplicationError(
            f"Too many recipients: {len(recipients.valid)} (at most {limit} per request).",
            {"recipients": len(recipients.valid), "limit": limit},
        )


def message_request_send(
    *,
    owner: AbstractBaseUser,
    channel: str,
    recipients: Sequence[str] | Recipients,
    message: str,
    subject: str = "",
    text: str = "",
    force_queue: bool = False,
    region: str | None = None,
    template: str = "",
    context: Mapping[str, Any] | None = None,
    recipient_contexts: Mapping[str, Mapping[str, Any]] | None = None,
) -> MessageRequestResult:
    """Screen and check the recipients, then send now or queue (`message_send`).

    `recipient_contexts` is keyed by normalised recipient. Raises ApplicationError as
    `recipients_check` does; nothing is created then.
    """
    prepared = recipients_screen(channel=channel, recipients=recipients, region=region)
    recipients_check(prepared)
    result = message_send(
        owner=owner,
        channel=channel,
        recipients=prepared.valid,
        message=message,
        subject=subject,
        text=text,
        force_queue=force_queue,
        template=template,
        context=context,
        recipient_contexts=recipient_contexts,
    )
    return MessageRequestResult(result=result, rejected=prepared.rejected)
