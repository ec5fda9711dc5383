"""OpenAPI extras for drf-spectacular: component naming, the Idempotency-Key header, examples.

The shapes themselves are the views' output serializers; this module only adds what the schema
shows beside them.
"""

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from .error_envelope import ErrorSerializer, error_body


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


def documented(
    serializer: Any, description: str, example: Any, code: int = 200, name: str = ""
) -> OpenApiResponse:
    """The `code` answer: `serializer`, described, with one example body (named `name`)."""
    example = OpenApiExample(
        name or description, value=example, response_only=True, status_codes=[str(code)]
    )
    return OpenApiResponse(serializer, description, examples=[example])


# --- Errors ----------------------------------------------------------------------------------

ErrorText = tuple[str, str, dict[str, Any]]  # (description, example message, example details)

_ERROR_TEXT: dict[int, ErrorText] = {
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

JOB_CONFLICT: dict[int, ErrorText] = {
    409: ("The job's state does not allow it.", "job is already completed", {})
}


def error_responses(
    *codes: int, texts: dict[int, ErrorText] | None = None
) -> dict[int, OpenApiResponse]:
    """`{code: OpenApiResponse(ErrorSerializer, example)}` for each status code."""
    responses = {}
    for code in codes:
        description, message, details = {**_ERROR_TEXT, **(texts or {})}[code]
        example = dict(error_body(message, details))
        responses[code] = documented(ErrorSerializer, description, example, code, f"Error {code}")
    return responses


# --- Examples --------------------------------------------------------------------------------

JOB_ID = "6f1c2b1e-1d2a-4d7b-9a55-0d4b8e1f6c3a"
PROGRESS_URL = f"/api/communication/email/progress?jobId={JOB_ID}"

QUEUED_EXAMPLE = {
    "success": True,
    "queued": True,
    "jobId": JOB_ID,
    "total": 12000,
    "rejected": [{"recipient": "not-an-email", "reason": "Invalid address."}],
    "progressUrl": PROGRESS_URL,
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

PROGRESS_EXAMPLE = {
    "jobId": JOB_ID,
    "channel": "email",
    "status": "running",
    "total": 12000,
    "pending": 6748,
    "active": 10,
    "completed": 5230,
    "failed": 12,
    "cancelled": 0,
    "unknown": 0,
    "progress": 43.68,
    "pausedUntil": None,
    "pauseReason": None,
    "createdAt": "2026-11-02T09:00:00+00:00",
    "startedAt": "2026-11-02T09:00:01+00:00",
    "finishedAt": None,
    "receipts": {"delivered": 5100, "undeliverable": 0, "bounced": 3, "complained": 0},
}
JOB_SUMMARY_EXAMPLE = {
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
JOB_DETAIL_EXAMPLE = {**JOB_SUMMARY_EXAMPLE, **PROGRESS_EXAMPLE, "owner": 1}
DELIVERY_EXAMPLE = {
    "recipient": "b@example.com",
    "status": "failed",
    "attempts": 4,
    "lastError": "503 Service Unavailable",
    "provider": "smtp",
    "providerMessageId": "",
    "nextAttemptAt": None,
    "sentAt": None,
    "receiptStatus": None,
    "receiptAt": None,
    "updatedAt": "2026-11-02T09:03:00+00:00",
}
CANCELLED_EXAMPLE = {
    **PROGRESS_EXAMPLE,
    "status": "cancelled",
    "pending": 0,
    "active": 0,
    "cancelled": 6758,
    "progress": 100.0,
    "success": True,
}
RETRIED_EXAMPLE = {**PROGRESS_EXAMPLE, "success": True, "requeued": 12}
