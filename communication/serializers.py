"""Output serializers shared by the job endpoints (SPEC §3.2, §3.6).

`JobProgressSerializer` is the answer of the progress endpoints and, extended, of the detail,
cancel and retry-failed endpoints.
"""

from datetime import datetime

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import Channel, Job, JobStatus
from .receipts import delivery_receipt_counts
from .selectors import JobProgress
from .send_responses import progress_url


class IsoDateTimeField(serializers.DateTimeField):
    """A datetime as `datetime.isoformat()` writes it, UTC as `+00:00`.

    DRF's own output writes UTC as `Z` and converts to the current time zone; the API has always
    answered with the stored value's `isoformat()`.
    """

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


class ProgressUrlField(serializers.CharField):
    """Where to poll a job's progress; the field's source is the job."""

    def to_representation(self, job: Job) -> str:
        return progress_url(job)


class ReceiptCountsSerializer(serializers.Serializer):
    """Recipients per delivery receipt status, zeros included."""

    delivered = serializers.IntegerField()
    undeliverable = serializers.IntegerField()
    bounced = serializers.IntegerField()
    complained = serializers.IntegerField()


class JobProgressSerializer(serializers.Serializer):
    """Progress of a job: its recipients by state, and the receipts providers reported."""

    # The instance is the `JobProgress` of `job_progress_get`.

    jobId = serializers.UUIDField(source="job.id")
    channel = serializers.ChoiceField(choices=Channel.choices, source="job.channel")
    status = serializers.ChoiceField(choices=JobStatus.choices)
    total = serializers.IntegerField(source="counts.total")
    pending = serializers.IntegerField(source="counts.pending", help_text="Not started.")
    active = serializers.IntegerField(
        source="counts.active", help_text="Being sent or waiting for a retry."
    )
    completed = serializers.IntegerField(source="counts.completed", help_text="Recipients sent.")
    failed = serializers.IntegerField(
        source="counts.failed", help_text="Recipients failed for good."
    )
    cancelled = serializers.IntegerField(source="counts.cancelled")
    unknown = serializers.IntegerField(
        source="counts.unknown", help_text="Outcome in doubt after a crash; not re-sent."
    )
    progress = serializers.FloatField(
        source="counts.percent", help_text="Percent of recipients in a final state."
    )
    pausedUntil = serializers.SerializerMethodField(
        help_text="While the channel's provider is paused (circuit open): until when."
    )
    pauseReason = serializers.SerializerMethodField()
    createdAt = IsoDateTimeField(source="job.created_at")
    startedAt = IsoDateTimeField(source="job.started_at", allow_null=True)
    finishedAt = IsoDateTimeField(source="job.finished_at", allow_null=True)
    receipts = serializers.SerializerMethodField()

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_pausedUntil(self, progress: JobProgress) -> str | None:
        return progress.pause[0] if progress.pause else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_pauseReason(self, progress: JobProgress) -> str | None:
        return progress.pause[1] if progress.pause else None

    @extend_schema_field(ReceiptCountsSerializer)
    def get_receipts(self, progress: JobProgress) -> dict[str, int]:
        return ReceiptCountsSerializer(delivery_receipt_counts(progress.job)).data


class JobActionSerializer(JobProgressSerializer):
    """A job's progress after it was cancelled or its failed recipients were queued again."""

    success = serializers.SerializerMethodField(help_text="Always true.")

    def get_success(self, progress: JobProgress) -> bool:
        return True
