"""Which deals are live and in what order, and the demo data command."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from ecommerce.models import Customer, Deal
from ecommerce.selectors import deal_list_active
from ecommerce.services import deal_context, price_format

from ..factories import DealFactory


def test_active_deals_are_live_ones_best_discount_first(db):
    now = timezone.now()
    small = DealFactory(original_price=Decimal("100"), deal_price=Decimal("90"))
    big = DealFactory(original_price=Decimal("3"), deal_price=Decimal("1"))
    tie_later = DealFactory(original_price=Decimal("10"), deal_price=Decimal("5"))
    tie_sooner = DealFactory(
        original_price=Decimal("1000"), deal_price=Decimal("500"), ends_at=now + timedelta(days=1)
    )
    DealFactory(is_active=False, deal_price=Decimal("1"))
    DealFactory(starts_at=now + timedelta(hours=1), deal_price=Decimal("1"))
    DealFactory(starts_at=now - timedelta(days=3), ends_at=now, deal_price=Decimal("1"))

    assert list(deal_list_active(at=now)) == [big, tie_sooner, tie_later, small]
    assert list(deal_list_active(at=now, limit=2)) == [big, tie_sooner]
    assert [d.discount_percent for d in (big, tie_sooner, small)] == [67, 50, 10]


def test_deal_context_is_json_ready_with_formatted_prices(db):
    deal = DealFactory(original_price=Decimal("1250"), deal_price=Decimal("999.5"), currency="USD")

    context = deal_context(deal)

    assert context["original_price"] == "USD 1,250.00"
    assert context["deal_price"] == "USD 999.50"
    assert context["saving"] == "USD 250.50"
    assert context["discount_percent"] == 20
    assert price_format(Decimal("1234567.891"), "GHS") == "GHS 1,234,567.89"


def test_seed_demo_is_idempotent(db):
    out = StringIO()
    call_command("seed_demo", "--customers", "30", stdout=out)
    customers, deals = Customer.objects.count(), Deal.objects.count()
    Customer.objects.filter(pk=Customer.objects.first().pk).update(first_name="Edited")

    call_command("seed_demo", "--customers", "30", stdout=out)

    assert (customers, deals) == (30, Deal.objects.count())
    assert Customer.objects.count() == 30 and deals >= 5
    assert Customer.objects.filter(first_name="Edited").count() == 1
    assert "customers: 0 created, 30 already there" in out.getvalue()
    assert Customer.objects.filter(email__endswith="@example.com").count() == 30
    assert all(c.phone.startswith("+233") for c in Customer.objects.all())
    assert Customer.objects.filter(is_active=False).exists()
    live = list(deal_list_active())
    assert 0 < len(live) < deals
    call_command("seed_demo", "--customers", "40", stdout=out)
    assert Customer.objects.count() == 40
