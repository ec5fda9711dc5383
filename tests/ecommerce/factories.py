from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from ecommerce.models import Customer, Deal


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    first_name = factory.Iterator(["Ama", "Kofi", "Akosua", "Kwame", "Abena", "Yaw"])
    last_name = factory.Iterator(["Mensah", "Owusu", "Boateng", "Asante"])
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    phone = factory.Sequence(lambda n: f"+23324{n:07d}")


class DealFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Deal

    title = factory.Sequence(lambda n: f"Deal {n}")
    description = "A good deal."
    original_price = Decimal("100.00")
    deal_price = Decimal("80.00")
    currency = "GHS"
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    ends_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))
