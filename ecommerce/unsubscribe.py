"""Signed one-click unsubscribe links (RFC 8058) for the best-deals email.

A link carries `signing.dumps({"c": customer_id})` under its own salt and never expires: an
unsubscribe link must keep working for as long as the email sits in someone's inbox. The
absolute URL starts with `settings.PUBLIC_BASE_URL`, the address the public reaches the site at.
"""

from typing import Any

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "ecommerce.unsubscribe"
DEFAULT_PUBLIC_BASE_URL = "http://localhost:8000"


def public_base_url() -> str:
    """`settings.PUBLIC_BASE_URL` without its trailing slash."""
    return getattr(settings, "PUBLIC_BASE_URL", DEFAULT_PUBLIC_BASE_URL).rstrip("/")


def unsubscribe_token_make(*, customer_id: int) -> str:
    return signing.dumps({"c": customer_id}, salt=SALT)


def unsubscribe_token_read(*, token: str) -> int:
    """The customer id a token was made for; raises `signing.BadSignature` if tampered with."""
    data = signing.loads(token, salt=SALT)
    if not isinstance(data, dict) or not isinstance(data.get("c"), int):
        raise signing.BadSignature("malformed unsubscribe token")
    return data["c"]


def unsubscribe_url(*, customer_id: int) -> str:
    path = reverse("ecommerce:unsubscribe", args=[unsubscribe_token_make(customer_id=customer_id)])
    return public_base_url() + path


def unsubscribe_context(*, customer_id: int) -> dict[str, Any]:
    """The per-recipient context entries that put the link in the body and the headers."""
    url = unsubscribe_url(customer_id=customer_id)
    return {
        "unsubscribe_url": url,
        "headers": {
            "List-Unsubscribe": f"<{url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    }
