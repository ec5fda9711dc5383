"""The answer of every send endpoint (SPEC §3.1): 200 with the results when sent within the
request, 202 with the progress URL when queued. The email and SMS APIs and the best-deals API
all answer through `send_response`."""

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status
from rest_framework.response import Response

from .models import DeliveryStatus, Job
from .schema import QUEUED_EXAMPLE, ErrorText, documented, error_responses
from .services.claims import RELEASED, Outcome
from .services.messages import MessageRequestResult

# A synchronous send's outcome per recipient, as the API and `sendbulk` report it.
RESULT_STATUS = {
    DeliveryStatus.SENT: "sent",
    DeliveryStatus.FAILED: "failed",
    DeliveryStatus.RETRY: "retrying",
    RELEASED: "queued",
}
SEND_RESULT_STATUSES = list(RESULT_STATUS.values())


def progress_url(job: Job) -> str:
    return reverse(f"communication:{job.channel}-progress") + f"?jobId={job.id}"


class RejectedSerializer(serializers.Serializer):
    recipient = serializers.CharField()
    reason = serializers.CharField()


class SendResultSerializer(serializers.Serializer):
    recipient = serializers.CharField()
    status = serializers.ChoiceField(choices=SEND_RESULT_STATUSES)
    error = serializers.CharField(required=False, help_text="Only when the send failed.")


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


def send_response(
    sent: MessageRequestResult,
    sent_now_serializer: type[serializers.Serializer] = SentNowSerializer,
    queued_serializer: type[serializers.Serializer] = QueuedSerializer,
) -> Response:
    """The 200 (sent now) or 202 (queued) answer of every send endpoint."""
    result, rejected = sent.result, sent.rejected
    job = result.job
    if result.queued:
        body = {
            "success": True,
            "queued": True,
            "jobId": job.id,
            "total": job.total,
            "rejected": rejected,
            "progressUrl": progress_url(job),
        }
        return Response(queued_serializer(body).data, status=status.HTTP_202_ACCEPTED)
    assert result.report is not None
    sent_count = result.report.count(DeliveryStatus.SENT)
    outcomes = result.report.outcomes
    body = {
        "success": sent_count == job.total,
        "queued": False,
        "jobId": job.id,
        "total": job.total,
        "sent": sent_count,
        "failed": result.report.count(DeliveryStatus.FAILED),
        "results": [_send_result(o) for o in sorted(outcomes, key=lambda o: o.delivery.pk)],
        "rejected": rejected,
    }
    return Response(sent_now_serializer(body).data, status=status.HTTP_200_OK)


def _send_result(outcome: Outcome) -> dict[str, str]:
    result = {"recipient": outcome.delivery.recipient, "status": RESULT_STATUS[outcome.status]}
    if outcome.error:
        result["error"] = outcome.error
    return result


def send_schema_responses(
    sent_example: dict[str, Any],
    sent_now_serializer: type[serializers.Serializer] = SentNowSerializer,
    queued_serializer: type[serializers.Serializer] = QueuedSerializer,
    errors: tuple[int, ...] = (400, 401, 409, 413, 422, 429, 503),
    error_texts: dict[int, ErrorText] | None = None,
) -> dict[int, OpenApiResponse]:
    """The `@extend_schema(responses=...)` of a send endpoint answering through `send_response`."""
    sent_now = "Fewer recipients than BULK_THRESHOLD: sent within the request."
    queued = "Queued: workers send it; follow progressUrl."
    return {
        200: documented(sent_now_serializer, sent_now, sent_example, name="Sent now"),
        202: documented(queued_serializer, queued, QUEUED_EXAMPLE, 202, name="Queued"),
        **error_responses(*errors, texts=error_texts),
    }
