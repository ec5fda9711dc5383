"""OpenAPI documentation of the API's shapes (SPEC §3): serializers used only by drf-spectacular.

The views build their bodies by hand; these classes describe them so that `/api/schema/` is
exact and schemathesis can check every response against it.
"""

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from .models import Channel, DeliveryStatus, JobStatus

SEND_RESULT_STATUSES = ["sent", "failed", "retrying", "queued"]


class AutoSchema(SpectacularAutoSchema):
    """Names nested serializers after their view: `EmailSendApi.InputSerializer` → EmailSendInput.

    The styleguide nests a plain `InputSerializer` in every `<Entity><Action>Api`; without this
    they would all be the component "Input".
    """

    def get_serializer_name(self, serializer: serializers.Serializer, direction: str) -> str:
        qualname = type(serializer).__qualname__
        if "." in qualname:
            return qualname.replace("Api.", "").replace(".", "")
        return super().get_serializer_name(serializer, direction)


JOB_ID = "6f1c2b1e-1d2a-4d7b-9a55-0d4b8e1f6c3a"
PROGRESS_URL = f"/api/communication/email/progress?jobId={JOB_ID}"


class ErrorSerializer(serializers.Serializer):
    success = serializers.BooleanField(help_text="Always false.")
    error = serializers.CharField(help_text="What went wrong, for people.")
    details = serializers.DictField(help_text="Field errors or context; may be empty.")


class RejectedSerializer(serializers.Serializer):
    recipient = serializers.CharField()
    reason = serializers.CharField()


class SendResultSerializer(serializers.Serializer):
    recipient = serializers.CharField()
    status = serializers.ChoiceField(choices=SEND_RESULT_STATUSES)
    error = serializers.CharField(required=False)


class SentNowSerializer(serializers.Serializer):
    success = serializers.BooleanField(help_text="True when every valid recipient was sent.")
    queued = serializers.BooleanField(help_text="Always false: sent within the request.")
    jobId = serializers.UUIDField()
    total = serializers.IntegerField()
    sent = serializers.IntegerField()
    failed = serializers.IntegerField()
    results = SendResultSerializer(many=True)
    rejected = RejectedSerializer(many=True)


class QueuedSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    queued = serializers.BooleanField(help_text="Always true: workers send it.")
    jobId = serializers.UUIDField()
    total = serializers.IntegerField()
    rejected = RejectedSerializer(many=True)
    progressUrl = serializers.CharField()


class ProgressSerializer(serializers.Serializer):
    jobId = serializers.UUIDField()
    channel = serializers.ChoiceField(choices=Channel.choices)
    status = serializers.ChoiceField(choices=JobStatus.choices)
    total = serializers.IntegerField()
    completed = serializers.IntegerField(help_text="Recipients sent.")
    failed = serializers.IntegerField(help_text="Recipients failed for good.")
    cancelled = serializers.IntegerField()
    unknown = serializers.IntegerField(help_text="Outcome in doubt after a crash; not re-sent.")
    active = serializers.IntegerField(help_text="Being sent or waiting for a retry.")
    pending = serializers.IntegerField(help_text="Not started.")
    progress = serializers.FloatField(help_text="Percent of recipients in a final state.")
    pausedUntil = serializers.CharField(
        allow_null=True,
        required=False,
        help_text="While the channel's provider is paused (circuit open): until when.",
    )
    pauseReason = serializers.CharField(allow_null=True, required=False)
    createdAt = serializers.DateTimeField()
    startedAt = serializers.DateTimeField(allow_null=True)
    finishedAt = serializers.DateTimeField(allow_null=True)


class JobSummarySerializer(serializers.Serializer):
    jobId = serializers.UUIDField()
    channel = serializers.ChoiceField(choices=Channel.choices)
    status = serializers.ChoiceField(choices=JobStatus.choices)
    subject = serializers.CharField(allow_blank=True)
    total = serializers.IntegerField()
    queued = serializers.BooleanField()
    createdAt = serializers.DateTimeField()
    finishedAt = serializers.DateTimeField(allow_null=True)
    progressUrl = serializers.CharField()


class JobDetailSerializer(JobSummarySerializer, ProgressSerializer):
    owner = serializers.IntegerField(help_text="Id of the user who created the job.")


class JobCancelSerializer(ProgressSerializer):
    success = serializers.BooleanField()


class JobRetryFailedSerializer(ProgressSerializer):
    success = serializers.BooleanField()
    requeued = serializers.IntegerField(help_text="Recipients queued again.")


class DeliverySerializer(serializers.Serializer):
    recipient = serializers.CharField()
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    attempts = serializers.IntegerField()
    lastError = serializers.CharField(allow_blank=True)
    provider = serializers.CharField(allow_blank=True)
    providerMessageId = serializers.CharField(allow_blank=True)
    nextAttemptAt = serializers.DateTimeField(allow_null=True)
    sentAt = serializers.DateTimeField(allow_null=True)
    updatedAt = serializers.DateTimeField()


def _page_of(name: str, item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    fields: dict[str, Any] = {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": item(many=True),
    }
    return type(name, (serializers.Serializer,), fields)


JobPageSerializer = _page_of("JobPage", JobSummarySerializer)
DeliveryPageSerializer = _page_of("DeliveryPage", DeliverySerializer)


# --- Errors ----------------------------------------------------------------------------------

_ERROR_TEXT = {
    400: ("Invalid input.", "Invalid input: recipients: This field is required.",
          {"recipients": ["This field is required."]}),
    401: ("Not authenticated.", "Authentication credentials were not provided.", {}),
    404: ("No such job, or not yours.", "Job not found.", {}),
    409: ("The request conflicts with the state of the job or of an earlier request.",
          "A request with this Idempotency-Key is still in progress.", {}),
    413: ("The request body is too large.",
          "The request body is larger than 16777216 bytes.", {}),
    422: ("The Idempotency-Key was used with a different request body.",
          "This Idempotency-Key was used with a different request.", {}),
    429: ("Too many requests: throttled (see Retry-After).",
          "Request was throttled. Expected available in 12 seconds.", {}),
    503: ("A shared store (Redis) cannot be reached.",
          "The idempotency store is unavailable; try again.", {}),
}  # fmt: skip


JOB_CONFLICT = {409: ("The job's state does not allow it.", "job is already completed", {})}


def error_responses(
    *codes: int, texts: dict[int, tuple[str, str, dict]] | None = None
) -> dict[int, OpenApiResponse]:
    """`{code: OpenApiResponse(ErrorSerializer, example)}` for each status code."""
    responses = {}
    for code in codes:
        description, message, details = {**_ERROR_TEXT, **(texts or {})}[code]
        example = OpenApiExample(
            f"Error {code}",
            value={"success": False, "error": message, "details": details},
            response_only=True,
            status_codes=[str(code)],
        )
        responses[code] = OpenApiResponse(ErrorSerializer, description, examples=[example])
    return responses


# --- Send endpoints ----------------------------------------------------------------------

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any unique string of up to 255 printable ASCII characters. A repeat of the same "
        "request with the same key (same user) within 24 hours returns the first response, "
        "with the header `Idempotent-Replayed: true`, instead of sending again. The same key "
        "with a different body → 422; while the first request is still running → 409."
    ),
)


def send_responses(sent_example: dict[str, Any]) -> dict[int, OpenApiResponse]:
    return {
        200: OpenApiResponse(
            SentNowSerializer,
            "Fewer recipients than BULK_THRESHOLD: sent within the request.",
            examples=[
                OpenApiExample(
                    "Sent now", value=sent_example, response_only=True, status_codes=["200"]
                )
            ],
        ),
        202: OpenApiResponse(
            QueuedSerializer,
            "Queued: workers send it; follow progressUrl.",
            examples=[
                OpenApiExample(
                    "Queued",
                    value={
                        "success": True,
                        "queued": True,
                        "jobId": JOB_ID,
                        "total": 12000,
                        "rejected": [{"recipient": "not-an-email", "reason": "Invalid address."}],
                        "progressUrl": PROGRESS_URL,
                    },
                    response_only=True,
                    status_codes=["202"],
                )
            ],
        ),
        **error_responses(400, 401, 409, 413, 422, 429, 503),
    }


EMAIL_SENT_EXAMPLE = {
    "success": False,
    "queued": False,
    "jobId": JOB_ID,
    "total": 2,
    "sent": 1,
    "failed": 1,
    "results": [
        {"recipient": "a@example.com", "status": "sent"},
        {"recipient": "b@example.com", "status": "failed", "error": "550 No such user"},
    ],
    "rejected": [],
}
SMS_SENT_EXAMPLE = {
    "success": True,
    "queued": False,
    "jobId": JOB_ID,
    "total": 2,
    "sent": 2,
    "failed": 0,
    "results": [
        {"recipient": "+233123456789", "status": "sent"},
        {"recipient": "+233241234567", "status": "sent"},
    ],
    "rejected": [],
}
EMAIL_REQUEST_EXAMPLE = OpenApiExample(
    "Email",
    value={
        "recipients": ["a@example.com", "b@example.com"],
        "subject": "Hello",
        "message": "<p>Hi</p>",
        "isBulk": False,
    },
    request_only=True,
)
EMAIL_BULK_REQUEST_EXAMPLE = OpenApiExample(
    "Email, queued",
    value={
        "recipients": ["a@example.com", "b@example.com", "not-an-email"],
        "subject": "Best deals this week",
        "message": "<p>Hi! Our best deals…</p>",
        "text": "Hi! Our best deals…",
        "isBulk": True,
    },
    request_only=True,
)
SMS_REQUEST_EXAMPLE = OpenApiExample(
    "SMS",
    value={"recipients": ["+233123456789", "0241234567"], "message": "Sale today", "isBulk": False},
    request_only=True,
)

# --- Job endpoints -----------------------------------------------------------------------

PROGRESS_EXAMPLE = {
    "jobId": JOB_ID,
    "channel": "email",
    "status": "running",
    "total": 12000,
    "completed": 5230,
    "failed": 12,
    "cancelled": 0,
    "unknown": 0,
    "active": 10,
    "pending": 6748,
    "progress": 43.68,
    "pausedUntil": None,
    "pauseReason": None,
    "createdAt": "2026-11-02T09:00:00+00:00",
    "startedAt": "2026-11-02T09:00:01+00:00",
    "finishedAt": None,
}
SUMMARY_EXAMPLE = {
    "jobId": JOB_ID,
    "channel": "email",
    "status": "running",
    "subject": "Deals",
    "total": 12000,
    "queued": True,
    "createdAt": "2026-11-02T09:00:00+00:00",
    "finishedAt": None,
    "progressUrl": PROGRESS_URL,
}


def ok(serializer: Any, description: str, example: Any, code: int = 200) -> OpenApiResponse:
    return OpenApiResponse(
        serializer,
        description,
        examples=[
            OpenApiExample(description, value=example, response_only=True, status_codes=[str(code)])
        ],
    )


PROGRESS_RESPONSES = {
    200: ok(ProgressSerializer, "Progress of the job", PROGRESS_EXAMPLE),
    **error_responses(400, 401, 404, 429),
}
JOB_LIST_RESPONSES = {
    200: ok(
        JobPageSerializer,
        "The user's jobs, newest first",
        {"count": 1, "next": None, "previous": None, "results": [SUMMARY_EXAMPLE]},
    ),
    **error_responses(400, 401, 404, 429),
}
JOB_DETAIL_RESPONSES = {
    200: ok(
        JobDetailSerializer,
        "The job and its progress",
        {**SUMMARY_EXAMPLE, **PROGRESS_EXAMPLE, "owner": 1},
    ),
    **error_responses(401, 404, 429),
}
JOB_RECIPIENTS_RESPONSES = {
    200: ok(
        DeliveryPageSerializer,
        "Per-recipient outcomes",
        {
            "count": 1,
            "next": None,
            "previous": None,
            "results": [
                {
                    "recipient": "b@example.com",
                    "status": "failed",
                    "attempts": 4,
                    "lastError": "503 Service Unavailable",
                    "provider": "smtp",
                    "providerMessageId": "",
                    "nextAttemptAt": None,
                    "sentAt": None,
                    "updatedAt": "2026-11-02T09:03:00+00:00",
                }
            ],
        },
    ),
    **error_responses(400, 401, 404, 429),
}
JOB_CANCEL_RESPONSES = {
    200: ok(
        JobCancelSerializer,
        "Cancelled: pending recipients are now cancelled",
        {**PROGRESS_EXAMPLE, "success": True, "status": "cancelled", "cancelled": 6748,
         "pending": 0, "active": 0, "progress": 100.0},
    ),
    **error_responses(401, 404, 409, 413, 429, texts=JOB_CONFLICT),
}  # fmt: skip
JOB_RETRY_FAILED_RESPONSES = {
    202: ok(
        JobRetryFailedSerializer,
        "Failed recipients queued again",
        {**PROGRESS_EXAMPLE, "success": True, "requeued": 12},
        code=202,
    ),
    **error_responses(400, 401, 404, 409, 413, 429, texts=JOB_CONFLICT),
}
