"""What the tests read out of a received best-deals email."""

import re
from email.message import Message
from typing import Any

from ..servers import wait_until

SEND_URL = "/api/ecommerce/best-deals/send-email"
PROGRESS_URL = "/api/communication/email/progress"
# A quota with no per-second spacing: these tests are about the email, not the rate limiter.
NO_SPACING = "100000/h"


def parts(message: Message) -> dict[str, str]:
    """The decoded text of each leaf part, by content type."""
    return {
        part.get_content_type(): part.get_payload(decode=True).decode(part.get_content_charset())
        for part in message.walk()
        if not part.is_multipart()
    }


def by_recipient(smtp: Any) -> dict[str, Message]:
    return {r.recipient: r.message for r in smtp.received}


def link_path(message: Message) -> str:
    """The path of the unsubscribe link in the plain-text part."""
    match = re.search(r"Unsubscribe: http://testserver(\S+)", parts(message)["text/plain"])
    assert match, parts(message)["text/plain"]
    return match.group(1)


def progress_final(api: Any, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll the email progress endpoint until the job is final; its last answer."""
    last: dict[str, Any] = {}

    def final() -> bool:
        last.update(api.get(PROGRESS_URL, {"jobId": job_id}).json())
        return last["status"] not in ("queued", "running")

    try:
        wait_until(final, timeout, 0.2, f"job {job_id} to finish")
    except AssertionError as err:
        raise AssertionError(f"{err}; last progress: {last}") from err
    return last
