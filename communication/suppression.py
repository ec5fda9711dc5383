"""The suppression list: addresses that hard-bounced, complained or opted out are not sent to.

Webhooks add addresses (`suppression_add`); the send APIs drop them from a request
(`recipients_suppress`), reporting each in `rejected`; staff lift them in the admin.
"""

from collections.abc import Iterator, Sequence

from django.db import connection

from .models import Channel, Suppression
from .recipients import Recipients

# SQLite limits the parameters of one statement; PostgreSQL takes any list in one query.
SQLITE_CHUNK = 10_000


def suppression_key(channel: str, address: str) -> str:
    """How an address is stored and compared: emails case-insensitively, numbers as E.164."""
    address = address.strip()
    return address.lower() if channel == Channel.EMAIL else address


def suppression_add(*, channel: str, address: str, reason: str, source: str = "") -> bool:
    """Put `address` on the list; True if it was not there yet (the first reason is kept)."""
    _, created = Suppression.objects.get_or_create(
        channel=channel,
        address=suppression_key(channel, address),
        defaults={"reason": reason, "source": source[:100]},
    )
    return created


def _chunks(keys: Sequence[str]) -> Iterator[Sequence[str]]:
    size = len(keys) if connection.vendor == "postgresql" else SQLITE_CHUNK
    for start in range(0, len(keys), max(size, 1)):
        yield keys[start : start + size]


def recipients_suppress(recipients: Recipients, channel: str) -> Recipients:
    """Move suppressed valid recipients into `rejected` ("suppressed: <reason>").

    Reads whichever is smaller: the channel's whole list (usually short, so a 100,000-recipient
    request costs no 100,000-value query), or the list entries of the request's recipients.
    """
    keys = [suppression_key(channel, r) for r in recipients.valid]
    suppressed = Suppression.objects.filter(channel=channel)
    reasons: dict[str, str] = {}
    if suppressed.count() <= len(keys):
        wanted = set(keys)
        reasons = {a: r for a, r in suppressed.values_list("address", "reason") if a in wanted}
    else:
        for chunk in _chunks(keys):
            rows = suppressed.filter(address__in=chunk)
            reasons.update(rows.values_list("address", "reason"))
    if not reasons:
        return recipients
    result = Recipients(rejected=list(recipients.rejected))
    for recipient, key in zip(recipients.valid, keys, strict=True):
        if key in reasons:
            result.reject(recipient, f"suppressed: {reasons[key]}")
        else:
            result.valid.append(recipient)
    return result
