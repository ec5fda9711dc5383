"""A shop's customers and deals (SPEC §3.4). Fields and trivial properties only."""

from decimal import ROUND_HALF_UP, Decimal

from django.db import models
from django.db.models.functions import Lower


class OptOutSource(models.TextChoices):
    UNSUBSCRIBE_LINK = "unsubscribe_link", "Unsubscribe link"
    CUSTOMER_REQUEST = "customer_request", "Customer request"
    ADMIN = "admin", "Admin"
    IMPORT = "import", "Import"


class Customer(models.Model):
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100, blank=True)
    email = models.EmailField(max_length=320, blank=True)
    phone = models.CharField(max_length=32, blank=True, help_text="E.164, e.g. +233241234567.")
    is_active = models.BooleanField(default=True)
    email_opt_out_at = models.DateTimeField(null=True, blank=True)
    email_opt_out_source = models.CharField(max_length=32, choices=OptOutSource.choices, blank=True)
    sms_opt_out_at = models.DateTimeField(null=True, blank=True)
    sms_opt_out_source = models.CharField(max_length=32, choices=OptOutSource.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(Lower("email"), name="ecommerce_customer_email_ci")]

    def __str__(self) -> str:
        return f"{self.full_name} <{self.email}>" if self.email else self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def email_opted_out(self) -> bool:
        return self.email_opt_out_at is not None

    @property
    def sms_opted_out(self) -> bool:
        return self.sms_opt_out_at is not None


class Deal(models.Model):
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    image_url = models.URLField(max_length=500, blank=True)
    original_price = models.DecimalField(max_digits=12, decimal_places=2)
    deal_price = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="GHS", help_text="ISO 4217 code.")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(original_price__gt=0), name="deal_original_price_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(deal_price__gte=0, deal_price__lte=models.F("original_price")),
                name="deal_price_within_original",
            ),
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="deal_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def discount_percent(self) -> int:
        """The saving as a whole percentage of the original price (half rounds up)."""
        if not self.original_price:
            return 0
        saving = (self.original_price - self.deal_price) / self.original_price * 100
        return int(Decimal(saving).quantize(Decimal("1"), rounding=ROUND_HALF_UP))
