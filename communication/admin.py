"""The jobs dashboard (SPEC §7): jobs with live progress bars, per-recipient outcomes, the
cancel and retry-failed actions, and a queue page with workers and queue depths.

Jobs and deliveries are read-only here: they are made by the API and `sendbulk`, and changed
only through the same services (`job_cancel`, `job_retry_failed`).
"""

import uuid
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from . import admin_suppression  # noqa: F401  (registers the Suppression admin)
from .exceptions import ApplicationError
from .models import Delivery, DeliveryStatus, Job, JobStatus
from .progress import JobCounts
from .selectors import channel_pause_get, delivery_list, job_progress_get
from .services.jobs import job_cancel, job_retry_failed

DELIVERIES_PER_PAGE = 50
BAR_SEGMENTS = ("completed", "failed", "unknown", "cancelled", "active")
OUTCOME_LABELS = (
    ("completed", "sent"),
    ("failed", "failed"),
    ("cancelled", "cancelled"),
    ("unknown", "unknown"),
    ("active", "in progress"),
    ("pending", "pending"),
)


def job_counts(job: Job) -> JobCounts:
    """Live counters of an active job, the stored counts of a final one; memoised per row."""
    if not hasattr(job, "_counts"):
        if job.is_active:
            progress = job_progress_get(job=job)
            job._counts, job._status = progress.counts, progress.status
        else:
            pending = job.total - job.completed_count - job.failed_count
            pending -= job.cancelled_count + job.unknown_count
            job._counts = JobCounts(
                pending=max(pending, 0),
                completed=job.completed_count,
                failed=job.failed_count,
                cancelled=job.cancelled_count,
                unknown=job.unknown_count,
            )
    return job._counts


def _job_call(request: HttpRequest, job: Job, service: Any, done: str) -> bool:
    try:
        service(job=job)
    except ApplicationError as err:
        messages.warning(request, f"Job {job.id}: {err.message}")
        return False
    messages.success(request, f"Job {job.id}: {done}")
    return True


def pause_text(pause: tuple[str, str] | None) -> str:
    """'Channel paused until 12:30:05' while a provider's circuit breaker holds the channel."""
    if not pause:
        return ""
    until = parse_datetime(pause[0])
    when = timezone.localtime(until).strftime("%H:%M:%S") if until else pause[0]
    return f"Channel paused until {when}"


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("job", "channel", "owner", "status_label", "total", "sent", "failed", "bar")
    list_filter = ("status", "channel", "created_at")
    list_select_related = ("owner",)
    date_hierarchy = "created_at"
    search_fields = ("subject", "owner__username")
    list_per_page = 50
    actions = ("cancel_jobs", "retry_failed_jobs")
    change_form_template = "admin/communication/job/change_form.html"
    fieldsets = (
        (None, {"fields": ("id", "owner", "channel", "status_label", "bar", "queued")}),
        ("Totals", {"fields": ("total", "outcomes")}),
        ("Times", {"fields": ("created_at", "started_at", "finished_at")}),
        ("Message", {"classes": ("collapse",), "fields": ("subject", "message", "text",
                                                          "template", "context")}),
    )  # fmt: skip
    readonly_fields = ("status_label", "bar", "outcomes")

    class Media:
        js = ("communication/progress.js",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        # A job page is read-only; "change" is the right to cancel and retry.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Job], search_term: str
    ) -> tuple[QuerySet[Job], bool]:
        try:
            return queryset.filter(id=uuid.UUID(search_term.strip())), False
        except ValueError:
            return super().get_search_results(request, queryset, search_term)

    @admin.display(description="Job", ordering="created_at")
    def job(self, job: Job) -> str:
        label = job.subject or job.message
        return f"{label[:40]}{'…' if len(label) > 40 else ''} ({str(job.id)[:8]})"

    @admin.display(description="Status", ordering="status")
    def status_label(self, job: Job) -> str:
        job_counts(job)  # a queued job whose batches started is shown running
        label = JobStatus(getattr(job, "_status", job.status)).label
        pause = channel_pause_get(job.channel) if job.is_active else None
        return format_html(
            '<span data-job="{}" data-field="status">{}</span>'
            '<br><small class="job-pause" data-job="{}" data-field="pause" title="{}">{}</small>',
            job.id,
            label,
            job.id,
            pause[1] if pause else "",
            pause_text(pause),
        )

    @admin.display(description="Sent")
    def sent(self, job: Job) -> str:
        return self._field(job, "completed")

    @admin.display(description="Failed")
    def failed(self, job: Job) -> str:
        return self._field(job, "failed")

    def _field(self, job: Job, name: str) -> str:
        value = getattr(job_counts(job), name)
        return format_html('<span data-job="{}" data-field="{}">{}</span>', job.id, name, value)

    @admin.display(description="Outcomes")
    def outcomes(self, job: Job) -> str:
        counts = job_counts(job)
        return format_html_join(
            " · ",
            '{} <span data-job="{}" data-field="{}">{}</span>',
            ((label, job.id, name, getattr(counts, name)) for name, label in OUTCOME_LABELS),
        )

    @admin.display(description="Progress")
    def bar(self, job: Job) -> str:
        counts = job_counts(job)
        total = counts.total or 1
        segments = format_html_join(
            "",
            '<span class="job-bar-{}" data-segment="{}" style="width: {}%"></span>',
            ((name, name, f"{getattr(counts, name) / total * 100:.2f}") for name in BAR_SEGMENTS),
        )
        url = reverse(f"communication:{job.channel}-progress") + f"?jobId={job.id}"
        return format_html(
            '<div class="job-progress" data-job="{}" data-url="{}" data-active="{}" title="{}">'
            '<span class="job-bar">{}</span>'
            '<span><span data-job="{}" data-field="progress">{}</span>%</span></div>',
            job.id,
            url,
            "true" if job.is_active else "false",
            ", ".join(f"{k} {v}" for k, v in counts.as_dict().items()),
            segments,
            job.id,
            f"{counts.percent:g}",
        )

    @admin.action(description="Cancel selected jobs", permissions=["change"])
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        for job in queryset:
            _job_call(request, job, job_cancel, "cancelled.")

    @admin.action(description="Retry failed recipients of selected jobs", permissions=["change"])
    def retry_failed_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        for job in queryset:
            _job_call(request, job, job_retry_failed, "failed recipients queued again.")

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/cancel/",
                view(require_POST(self.cancel_view)),
                name="communication_job_cancel",
            ),
            path(
                "<path:object_id>/retry-failed/",
                view(require_POST(self.retry_failed_view)),
                name="communication_job_retry_failed",
            ),
            *super().get_urls(),
        ]

    def _object_action(
        self, request: HttpRequest, object_id: str, service: Any, done: str
    ) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        job = get_object_or_404(Job, pk=unquote(object_id))
        _job_call(request, job, service, done)
        return HttpResponseRedirect(reverse("admin:communication_job_change", args=[job.pk]))

    def cancel_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._object_action(request, object_id, job_cancel, "cancelled.")

    def retry_failed_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        message = "failed recipients queued again."
        return self._object_action(request, object_id, job_retry_failed, message)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        job = self.get_object(request, unquote(object_id))
        context = {**deliveries_context(request, job), **(extra_context or {})} if job else {}
        context["can_act"] = self.has_change_permission(request)
        return super().change_view(request, object_id, form_url, context)


def deliveries_context(request: HttpRequest, job: Job) -> dict[str, Any]:
    """One page of the job's recipients, filtered by `?status=`, with per-status counts."""
    status = request.GET.get("status")
    if status not in DeliveryStatus.values:
        status = None
    page = Paginator(delivery_list(job=job, status=status), DELIVERIES_PER_PAGE).get_page(
        request.GET.get("p")
    )
    by_status = dict(job.deliveries.values_list("status").annotate(n=Count("id")))
    return {
        "deliveries": page,
        "delivery_status": status,
        "delivery_statuses": [
            (value, label, by_status.get(value, 0)) for value, label in DeliveryStatus.choices
        ],
        "delivery_total": sum(by_status.values()),
        "retryable": by_status.get(DeliveryStatus.FAILED, 0) > 0,
    }


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """Every recipient of every job, read-only: search one address across jobs."""

    list_display = ("recipient", "job", "status", "attempts", "last_error", "sent_at", "updated_at")
    list_filter = ("status", "job__channel")
    list_select_related = ("job",)
    search_fields = ("=recipient",)
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Delivery | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Delivery | None = None) -> bool:
        return False
