"""The best-deals email (SPEC §3.4): who receives it, what it carries, and opting out."""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from communication.exceptions import ApplicationError
from communication.models import Channel
from communication.recipients import Recipients, normalise_email, recipients_parse
from communication.services.messages import MessageRequestResult, message_request_send

from .models import Customer, Deal
from .selectors import (
    LOOKUP_CHUNK,
    customer_list_by_emails,
    customer_list_for_best_deals,
    deal_list_active,
)
from .unsubscribe import unsubscribe_context

BEST_DEALS_TEMPLATE = "ecommerce/email/best_deals"
BEST_DEALS_SUBJECT = "This week's best deals"
BEST_DEALS_LIMIT = 20  # deals in one email
DEFAULT_SHOP_NAME = "Our shop"

REASON_UNKNOWN = "unknown customer id"
REASON_INACTIVE = "inactive customer"
REASON_NO_EMAIL = "customer has no email address"
REASON_OPTED_OUT = "customer opted out of email"


def price_format(amount: Decimal, currency: str) -> str:
    """`price_format(Decimal("1250"), "GHS")` is "GHS 1,250.00"."""
    return f"{currency} {amount:,.2f}"


def deal_context(deal: Deal) -> dict[str, Any]:
    """A deal as the email template sees it: JSON-serialisable, prices already formatted."""
    ends_at = timezone.localtime(deal.ends_at)
    return {
        "title": deal.title,
        "description": deal.description,
        "image_url": deal.image_url,
        "currency": deal.currency,
        "original_price": price_format(deal.original_price, deal.currency),
        "deal_price": price_format(deal.deal_price, deal.currency),
        "saving": price_format(deal.original_price - deal.deal_price, deal.currency),
        "discount_percent": deal.discount_percent,
        "ends_at": ends_at.isoformat(),
        "ends_on": f"{ends_at.day} {ends_at:%B %Y}",
    }


@dataclass
class Audience:
    """Recipients in order, each with its own template context, and who was skipped and why."""

    recipients: Recipients = field(default_factory=Recipients)
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)
    owners: dict[str, int | None] = field(default_factory=dict)  # lower-cased email → customer

    def add(self, email: str, context: dict[str, Any], customer_id: int | None = None) -> None:
        key = email.lower()
        if key in self.owners:
            return  # the same address again: one email is enough
        self.owners[key] = customer_id
        self.recipients.valid.append(email)
        self.contexts[email] = context

    def add_customer(self, customer: Customer, label: Any) -> None:
        """Add a customer, or record under `label` why they are skipped."""
        reason = customer_skip_reason(customer)
        try:
            email = normalise_email(customer.email) if reason is None else ""
        except ValueError as err:
            reason = f"invalid email address: {err}"
        owner = self.owners.get(email.lower(), customer.id)
        if reason is None and owner != customer.id:
            reason = f"same email address as customer {owner}"
        if reason is not None:
            self.recipients.reject(label, reason)
            return
        link = unsubscribe_context(customer_id=customer.id)
        self.add(email, {"first_name": customer.first_name, **link}, customer.id)


def customer_skip_reason(customer: Customer) -> str | None:
    """Why the best-deals email must not go to `customer`, or None."""
    if not customer.is_active:
        return REASON_INACTIVE
    if not customer.email:
        return REASON_NO_EMAIL
    if customer.email_opted_out:
        return REASON_OPTED_OUT
    return None


def shop_name() -> str:
    return getattr(settings, "SHOP_NAME", DEFAULT_SHOP_NAME)


def best_deals_campaign_start(
    *,
    owner: AbstractBaseUser,
    customer_ids: Iterable[int],
    send_to_all: bool,
    manual_emails: Sequence[str],
) -> MessageRequestResult:
    """Send the current best deals to customers (by id, or all) and to typed-in addresses.

    `send_to_all` ignores `customer_ids` and takes every customer. Inactive customers, those
    without a (valid) email and those who opted out are skipped; they and unknown ids are
    returned in `rejected` as `{"recipient": <customer id>, "reason": ...}`. A manual email
    that belongs to a customer is that customer: same skip rules, personal greeting and
    unsubscribe link. Any other manual email gets "Hi there" and no unsubscribe link (there is
    no customer to record the opt-out on). Invalid manual emails are rejected by address.

    Each recipient's email is rendered from `BEST_DEALS_TEMPLATE` at send time; the job stores
    only the deals (shared) and each recipient's name and link. Fewer than BULK_THRESHOLD
    recipients are sent now, more are queued (see `message_send`).

    Raises ApplicationError: 409 when no deal is active, 400 when nobody is left to send to
    or the recipients exceed MAX_RECIPIENTS_PER_REQUEST.
    """
    deals = [deal_context(deal) for deal in deal_list_active(limit=BEST_DEALS_LIMIT)]
    if not deals:
        raise ApplicationError("There are no active deals to send.", status=409)
    audience = Audience()
    ids = None if send_to_all else list(dict.fromkeys(customer_ids))
    found: set[int] = set()
    for customer in _customers(ids):
        found.add(customer.id)
        audience.add_customer(customer, label=customer.id)
    for missing in (i for i in ids or [] if i not in found):
        audience.recipients.reject(missing, REASON_UNKNOWN)
    _audience_add_manual(audience, manual_emails)
    # Bounced or complaining addresses are skipped there, whoever they belong to.
    return message_request_send(
        owner=owner,
        channel=Channel.EMAIL,
        recipients=audience.recipients,
        subject=BEST_DEALS_SUBJECT,
        message="",
        template=BEST_DEALS_TEMPLATE,
        context={"shop_name": shop_name(), "deals": deals},
        recipient_contexts=audience.contexts,
    )


def _customers(ids: list[int] | None) -> Iterator[Customer]:
    if ids is None:
        yield from customer_list_for_best_deals().iterator(chunk_size=2000)
        return
    for start in range(0, len(ids), LOOKUP_CHUNK):  # SQLite caps the parameters of a query
        yield from customer_list_for_best_deals(customer_ids=ids[start : start + LOOKUP_CHUNK])


def _audience_add_manual(audience: Audience, manual_emails: Sequence[str]) -> None:
    manual = recipients_parse(manual_emails, channel=Channel.EMAIL)
    audience.recipients.rejected.extend(manual.rejected)
    customers = customer_list_by_emails(emails=manual.valid)
    for email in manual.valid:
        customer = customers.get(email.lower())
        if customer is None:
            audience.add(email, {"first_name": ""})
        else:
            audience.add_customer(customer, label=email)


@transaction.atomic
def customer_email_opt_out(*, customer: Customer, source: str) -> Customer:
    """Stop marketing email to `customer`. Idempotent: the first opt-out's time and source stay."""
    now = timezone.now()
    Customer.objects.filter(pk=customer.pk, email_opt_out_at__isnull=True).update(
        email_opt_out_at=now, email_opt_out_source=source, updated_at=now
    )
    customer.refresh_from_db()
    return customer
