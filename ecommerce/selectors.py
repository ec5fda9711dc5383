"""Reads of customers and deals for the best-deals email."""

from collections.abc import Iterable
from datetime import datetime

from django.db.models import F, FloatField, QuerySet
from django.db.models.functions import Cast, Lower
from django.utils import timezone

from .models import Customer, Deal

CUSTOMER_FIELDS = ("id", "first_name", "email", "is_active", "email_opt_out_at")
LOOKUP_CHUNK = 1000  # stays under SQLite's limit of query parameters


def customer_list_for_best_deals(
    *, customer_ids: Iterable[int] | None = None
) -> QuerySet[Customer]:
    """The customers to consider for a best-deals send, by id, eligible or not.

    `customer_ids=None` means every customer. The caller decides who is skipped (inactive,
    no email, opted out); only the fields it needs are loaded.
    """
    customers = Customer.objects.only(*CUSTOMER_FIELDS).order_by("id")
    if customer_ids is not None:
        customers = customers.filter(id__in=list(customer_ids))
    return customers


def customer_list_by_emails(*, emails: Iterable[str]) -> dict[str, Customer]:
    """Customers by lower-cased email; where several share one, the lowest id wins."""
    wanted = sorted({email.lower() for email in emails})
    found: dict[str, Customer] = {}
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start : start + LOOKUP_CHUNK]
        customers = (
            Customer.objects.only(*CUSTOMER_FIELDS)
            .annotate(email_ci=Lower("email"))
            .filter(email_ci__in=chunk)
            .order_by("id")
        )
        for customer in customers:
            found.setdefault(customer.email_ci, customer)
    return found


def deal_list_active(*, at: datetime | None = None, limit: int | None = None) -> QuerySet[Deal]:
    """Deals flagged active whose window contains `at` (now by default), best discount first.

    Ties go to the deal ending soonest. The discount is compared in the database, as a float
    (SQLite would otherwise divide whole-number prices as integers).
    """
    at = at or timezone.now()
    saving = Cast(F("original_price") - F("deal_price"), FloatField())
    discount = saving / Cast("original_price", FloatField())
    deals = Deal.objects.filter(is_active=True, starts_at__lte=at, ends_at__gt=at).order_by(
        discount.desc(), "ends_at", "id"
    )
    return deals[:limit] if limit is not None else deals


def customer_get(*, customer_id: int) -> Customer | None:
    return Customer.objects.filter(id=customer_id).first()
