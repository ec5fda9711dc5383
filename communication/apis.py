"""HTTP API of SPEC §3.1 to 3.3 and §3.6: one view per operation."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import api_docs as docs
from .exceptions import ApplicationError
from .idempotency import idempotent
from .models import Channel, DeliveryStatus, Job, JobStatus
from .receipts import delivery_receipt_counts
from .selectors import delivery_list, job_get, job_list, job_progress_get
from .send_responses import progress_url, send_response
from .services.jobs import job_cancel, job_retry_failed
from .services.messages import SMS_MAX_LENGTH, message_request_send
from .throttling import ScopedRateThrottle


class RecipientListField(serializers.ListField):
    child = serializers.CharField(allow_blank=True, trim_whitespace=False)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_empty=False, **kwargs)


class EmailSendApi(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "send"

    class InputSerializer(serializers.Serializer):
        recipients = RecipientListField()
        subject = serializers.CharField(max_length=998)
        message = serializers.CharField(help_text="HTML body.")
        text = serializers.CharField(required=False, allow_blank=True)
        isBulk = serializers.BooleanField(required=False, default=False)

        def validate_subject(self, value: str) -> str:
            if "\r" in value or "\n" in value:
                raise serializers.ValidationError("The subject must not contain line breaks.")
            return value

    @extend_schema(
        request=InputSerializer,
        parameters=[docs.IDEMPOTENCY_KEY],
        responses=docs.send_responses(docs.EMAIL_SENT_EXAMPLE),
        examples=[docs.EMAIL_REQUEST_EXAMPLE, docs.EMAIL_BULK_REQUEST_EXAMPLE],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sent = message_request_send(
            owner=request.user,
            channel=Channel.EMAIL,
            recipients=data.validated_data["recipients"],
            subject=data.validated_data["subject"],
            message=data.validated_data["message"],
            text=data.validated_data.get("text", ""),
            force_queue=data.validated_data["isBulk"],
        )
        return send_response(sent)


class SmsSendApi(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "send"

    class InputSerializer(serializers.Serializer):
        recipients = RecipientListField()
        message = serializers.CharField(max_length=SMS_MAX_LENGTH)
        isBulk = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        request=InputSerializer,
        parameters=[docs.IDEMPOTENCY_KEY],
        responses=docs.send_responses(docs.SMS_SENT_EXAMPLE),
        examples=[docs.SMS_REQUEST_EXAMPLE],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sent = message_request_send(
            owner=request.user,
            channel=Channel.SMS,
            recipients=data.validated_data["recipients"],
            message=data.validated_data["message"],
            force_queue=data.validated_data["isBulk"],
        )
        return send_response(sent)


def job_progress_data(job: Job) -> dict[str, Any]:
    progress = job_progress_get(job=job)
    counts = progress.counts
    return {
        "jobId": str(job.id),
        "channel": job.channel,
        "status": progress.status,
        "total": counts.total,
        **counts.as_dict(),
        "progress": counts.percent,
        "pausedUntil": progress.pause[0] if progress.pause else None,
        "pauseReason": progress.pause[1] if progress.pause else None,
        "createdAt": job.created_at.isoformat(),
        "startedAt": job.started_at.isoformat() if job.started_at else None,
        "finishedAt": job.finished_at.isoformat() if job.finished_at else None,
        "receipts": delivery_receipt_counts(job),
    }


def _job_or_404(request: Request, job_id: object, channel: str | None = None) -> Job:
    job = job_get(user=request.user, job_id=job_id, channel=channel)
    if job is None:
        raise ApplicationError("Job not found.", status=404)
    return job


class JobProgressApi(APIView):
    """`GET …/<channel>/progress?jobId=`; the channel comes from the URL."""

    channel: str = Channel.EMAIL

    @extend_schema(
        parameters=[OpenApiParameter("jobId", str, required=True)],
        responses=docs.PROGRESS_RESPONSES,
    )
    def get(self, request: Request) -> Response:
        job_id = request.query_params.get("jobId")
        if not job_id:
            raise ApplicationError("The jobId query parameter is required.")
        return Response(job_progress_data(_job_or_404(request, job_id, self.channel)))


class JobListApi(APIView):
    class FilterSerializer(serializers.Serializer):
        channel = serializers.ChoiceField(choices=Channel.choices, required=False)
        status = serializers.ChoiceField(choices=JobStatus.choices, required=False)

    @extend_schema(
        operation_id="communication_jobs_list",
        parameters=[FilterSerializer],
        responses=docs.JOB_LIST_RESPONSES,
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        jobs = job_list(user=request.user, **filters.validated_data)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(jobs, request, view=self)
        return paginator.get_paginated_response([job_summary(job) for job in page or []])


def job_summary(job: Job) -> dict[str, Any]:
    return {
        "jobId": str(job.id),
        "channel": job.channel,
        "status": job.status,
        "subject": job.subject,
        "total": job.total,
        "queued": job.queued,
        "createdAt": job.created_at.isoformat(),
        "finishedAt": job.finished_at.isoformat() if job.finished_at else None,
        "progressUrl": progress_url(job),
    }


class JobDetailApi(APIView):
    @extend_schema(responses=docs.JOB_DETAIL_RESPONSES)
    def get(self, request: Request, job_id: str) -> Response:
        job = _job_or_404(request, job_id)
        return Response({**job_summary(job), **job_progress_data(job), "owner": job.owner_id})


class JobRecipientListApi(APIView):
    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=DeliveryStatus.choices, required=False)

    @extend_schema(parameters=[FilterSerializer], responses=docs.JOB_RECIPIENTS_RESPONSES)
    def get(self, request: Request, job_id: str) -> Response:
        job = _job_or_404(request, job_id)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        deliveries = delivery_list(job=job, status=filters.validated_data.get("status"))
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(deliveries, request, view=self)
        return paginator.get_paginated_response(
            [
                {
                    "recipient": d.recipient,
                    "status": d.status,
                    "attempts": d.attempts,
                    "lastError": d.last_error,
                    "provider": d.provider,
                    "providerMessageId": d.provider_message_id,
                    "nextAttemptAt": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
                    "sentAt": d.sent_at.isoformat() if d.sent_at else None,
                    "receiptStatus": d.receipt_status or None,
                    "receiptAt": d.receipt_at.isoformat() if d.receipt_at else None,
                    "updatedAt": d.updated_at.isoformat(),
                }
                for d in page or []
            ]
        )


class JobCancelApi(APIView):
    @extend_schema(request=None, responses=docs.JOB_CANCEL_RESPONSES)
    def post(self, request: Request, job_id: str) -> Response:
        job = job_cancel(job=_job_or_404(request, job_id))
        return Response({"success": True, **job_progress_data(job)})


class JobRetryFailedApi(APIView):
    class InputSerializer(serializers.Serializer):
        includeUnknown = serializers.BooleanField(required=False, default=False)

    @extend_schema(request=InputSerializer, responses=docs.JOB_RETRY_FAILED_RESPONSES)
    def post(self, request: Request, job_id: str) -> Response:
        job = _job_or_404(request, job_id)
        data = self.InputSerializer(data=request.data or {})
        data.is_valid(raise_exception=True)
        queued = job_retry_failed(job=job, include_unknown=data.validated_data["includeUnknown"])
        body = {"success": True, "requeued": queued, **job_progress_data(job)}
        return Response(body, status=status.HTTP_202_ACCEPTED)
