"""Customers and deals in the Django admin (SPEC §7)."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from .models import Customer, Deal, OptOutSource
from .services import customer_email_opt_out


class EmailOptOutFilter(admin.SimpleListFilter):
    title = "email opt-out"
    parameter_name = "email_opted_out"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [("yes", "Opted out"), ("no", "Subscribed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("yes", "no"):
            return queryset.filter(email_opt_out_at__isnull=self.value() == "no")
        return queryset


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = (
        "full_name",
        "email",
        "phone",
        "is_active",
        "email_opt_out_at",
        "sms_opt_out_at",
    )
    list_filter = ("is_active", EmailOptOutFilter, "email_opt_out_source", "sms_opt_out_source")
    search_fields = ("first_name", "last_name", "email", "phone")
    readonly_fields = ("created_at", "updated_at")
    actions = ("opt_out_of_email",)
    fieldsets = (
        (None, {"fields": ("first_name", "last_name", "email", "phone", "is_active")}),
        ("Email opt-out", {"fields": ("email_opt_out_at", "email_opt_out_source")}),
        ("SMS opt-out", {"fields": ("sms_opt_out_at", "sms_opt_out_source")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(ordering="first_name", description="name")
    def full_name(self, customer: Customer) -> str:
        return customer.full_name

    @admin.action(description="Opt the selected customers out of email")
    def opt_out_of_email(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        for customer in queryset:
            customer_email_opt_out(customer=customer, source=OptOutSource.ADMIN)
        self.message_user(request, f"{queryset.count()} customer(s) opted out.", messages.SUCCESS)


@admin.register(Deal)
class DealAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "original_price",
        "deal_price",
        "currency",
        "discount",
        "starts_at",
        "ends_at",
        "is_active",
        "live",
    )
    list_filter = ("is_active", "currency", "starts_at", "ends_at")
    search_fields = ("title", "description")
    date_hierarchy = "starts_at"
    readonly_fields = ("created_at",)

    @admin.display(description="discount")
    def discount(self, deal: Deal) -> str:
        return f"{deal.discount_percent}%"

    @admin.display(boolean=True, description="in the email now")
    def live(self, deal: Deal) -> bool:
        return deal.is_active and deal.starts_at <= timezone.now() < deal.ends_at
