"""factory_boy factories: users, jobs and their deliveries (made by the service, as in
production), customers and deals."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from communication.models import Delivery, Job
from communication.services.jobs import job_create
from ecommerce.models import Customer, Deal

from .helpers import addresses, numbers


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("pw-user-123")


class AdminFactory(UserFactory):
    is_staff = True
    is_superuser = True


def _update(model: type, pk: Any, fields: dict[str, Any]) -> None:
    """Write `fields` over a row the service made, as a test that needs another state does."""
    if fields:
        model.objects.filter(pk=pk).update(**fields)


class JobFactory(factory.django.DjangoModelFactory):
    """A job and one delivery per recipient, made by `job_create`; any other Job field given
    (`status=…`, `created_at=…`) is written over the row afterwards.

    `size` recipients by default: `numbers()` for SMS, `addresses()` for email."""

    class Meta:
        model = Job

    class Params:
        size = 3

    owner = factory.SubFactory(UserFactory)
    channel = "email"
    recipients = factory.LazyAttribute(
        lambda job: numbers(job.size) if job.channel == "sms" else addresses(job.size)
    )
    message = "Hi"
    subject = factory.LazyAttribute(lambda job: "Hi" if job.channel == "email" else "")

    @classmethod
    def _create(cls, model_class: type[Job], *args: Any, **kwargs: Any) -> Job:
        made = {name: kwargs.pop(name) for name in ("owner", "channel", "recipients", "message")}
        job = job_create(subject=kwargs.pop("subject"), **made)
        _update(model_class, job.pk, kwargs)
        job.refresh_from_db()
        return job


class SmsJobFactory(JobFactory):
    channel = "sms"


class DeliveryFactory(factory.django.DjangoModelFactory):
    """The delivery row `job_create` made for `recipient` in `job` (by default the only one of
    a new one-recipient job), with any other field given written over it."""

    class Meta:
        model = Delivery

    job = factory.SubFactory(JobFactory, size=1)
    recipient = factory.LazyAttribute(lambda delivery: delivery.job.deliveries.get().recipient)

    @classmethod
    def _create(cls, model_class: type[Delivery], *args: Any, **kwargs: Any) -> Delivery:
        delivery = model_class.objects.get(job=kwargs.pop("job"), recipient=kwargs.pop("recipient"))
        _update(model_class, delivery.pk, kwargs)
        delivery.refresh_from_db()
        return delivery


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
