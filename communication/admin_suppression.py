"""Admin of the suppression list: find an address, see why it is suppressed, lift it."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import Suppression


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ["address", "channel", "reason", "source", "created_at"]
    list_filter = ["channel", "reason", "created_at"]
    search_fields = ["address", "source"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at"]
    actions = ["lift"]

    @admin.action(description="Lift the suppression (send to these addresses again)")
    def lift(self, request: HttpRequest, queryset: QuerySet[Suppression]) -> None:
        addresses = list(queryset.values_list("address", flat=True))
        count, _ = queryset.delete()
        self.message_user(
            request,
            f"Lifted {count} suppression(s): {', '.join(addresses[:10])}"
            + ("…" if len(addresses) > 10 else ""),
            messages.SUCCESS,
        )
