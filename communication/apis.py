"""HTTP API of SPEC §3.1 to 3.3 and §3.6: one view per operation."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import schema
from .exceptions import ApplicationError
from .idempotency import idempotent
from .models import Channel, Delivery, DeliveryStatus, Job, JobStatus, ReceiptStatus
from .schema import JOB_CONFLICT, documented, error_responses
from .selectors import JobProgress, delivery_list, job_get, job_list, job_progress_get
from .send_responses import send_response, send_schema_responses
from .serializers import (
    IsoDateTimeField,
    JobActionSerializer,
    JobProgressSerializer,
    ProgressUrlField,
)
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
        parameters=[schema.IDEMPOTENCY_KEY],
        responses=send_schema_responses(schema.EMAIL_SENT_EXAMPLE),
        examples=[schema.EMAIL_REQUEST_EXAMPLE, schema.EMAIL_BULK_REQUEST_EXAMPLE],
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
        parameters=[schema.IDEMPOTENCY_KEY],
        responses=send_schema_responses(schema.SMS_SENT_EXAMPLE),
        examples=[schema.SMS_REQUEST_EXAMPLE],
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
        responses={
            200: documented(JobProgressSerializer, "Progress of the job", schema.PROGRESS_EXAMPLE),
            **error_responses(400, 401, 404, 429),
        },
    )
    def get(self, request: Request) -> Response:
        job_id = request.query_params.get("jobId")
        if not job_id:
            raise ApplicationError("The jobId query parameter is required.")
        job = _job_or_404(request, job_id, self.channel)
        return Response(JobProgressSerializer(job_progress_get(job=job)).data)


class JobListApi(APIView):
    pagination_class = PageNumberPagination

    class FilterSerializer(serializers.Serializer):
        channel = serializers.ChoiceField(choices=Channel.choices, required=False)
        status = serializers.ChoiceField(choices=JobStatus.choices, required=False)

    class OutputSerializer(serializers.Serializer):
        jobId = serializers.UUIDField(source="id")
        channel = serializers.ChoiceField(choices=Channel.choices)
        status = serializers.ChoiceField(choices=JobStatus.choices)
        subject = serializers.CharField(allow_blank=True)
        total = serializers.IntegerField()
        queued = serializers.BooleanField()
        createdAt = IsoDateTimeField(source="created_at")
        finishedAt = IsoDateTimeField(source="finished_at", allow_null=True)
        progressUrl = ProgressUrlField(source="*")

    @extend_schema(
        operation_id="communication_jobs_list",
        parameters=[FilterSerializer],
        responses={
            200: documented(
                OutputSerializer(many=True),
                "The user's jobs, newest first",
                schema.JOB_SUMMARY_EXAMPLE,
            ),
            **error_responses(400, 401, 404, 429),
        },
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        jobs = job_list(user=request.user, **filters.validated_data)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(jobs, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class JobDetailApi(APIView):
    class OutputSerializer(JobProgressSerializer):
        subject = serializers.CharField(source="job.subject", allow_blank=True)
        queued = serializers.BooleanField(source="job.queued")
        progressUrl = ProgressUrlField(source="job")
        owner = serializers.IntegerField(
            source="job.owner_id", help_text="Id of the user who created the job."
        )

    @extend_schema(
        responses={
            200: documented(
                OutputSerializer, "The job and its progress", schema.JOB_DETAIL_EXAMPLE
            ),
            **error_responses(401, 404, 429),
        }
    )
    def get(self, request: Request, job_id: str) -> Response:
        job = _job_or_404(request, job_id)
        return Response(self.OutputSerializer(job_progress_get(job=job)).data)


class JobRecipientListApi(APIView):
    pagination_class = PageNumberPagination

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=DeliveryStatus.choices, required=False)

    class OutputSerializer(serializers.Serializer):
        recipient = serializers.CharField()
        status = serializers.ChoiceField(choices=DeliveryStatus.choices)
        attempts = serializers.IntegerField()
        lastError = serializers.CharField(source="last_error", allow_blank=True)
        provider = serializers.CharField(allow_blank=True)
        providerMessageId = serializers.CharField(source="provider_message_id", allow_blank=True)
        nextAttemptAt = IsoDateTimeField(source="next_attempt_at", allow_null=True)
        sentAt = IsoDateTimeField(source="sent_at", allow_null=True)
        receiptStatus = serializers.SerializerMethodField(
            help_text="What the provider reported after the send; null until it reports."
        )
        receiptAt = IsoDateTimeField(source="receipt_at", allow_null=True)
        updatedAt = IsoDateTimeField(source="updated_at")

        @extend_schema_field(
            serializers.ChoiceField(choices=ReceiptStatus.choices, allow_null=True)
        )
        def get_receiptStatus(self, delivery: Delivery) -> str | None:
            return delivery.receipt_status or None

    @extend_schema(
        parameters=[FilterSerializer],
        responses={
            200: documented(
                OutputSerializer(many=True), "Per-recipient outcomes", schema.DELIVERY_EXAMPLE
            ),
            **error_responses(400, 401, 404, 429),
        },
    )
    def get(self, request: Request, job_id: str) -> Response:
        job = _job_or_404(request, job_id)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        deliveries = delivery_list(job=job, status=filters.validated_data.get("status"))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(deliveries, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class JobCancelApi(APIView):
    @extend_schema(
        request=None,
        responses={
            200: documented(
                JobActionSerializer,
                "Cancelled: pending recipients are now cancelled",
                schema.CANCELLED_EXAMPLE,
            ),
            **error_responses(401, 404, 409, 413, 429, texts=JOB_CONFLICT),
        },
    )
    def post(self, request: Request, job_id: str) -> Response:
        job = job_cancel(job=_job_or_404(request, job_id))
        return Response(JobActionSerializer(job_progress_get(job=job)).data)


class JobRetryFailedApi(APIView):
    class InputSerializer(serializers.Serializer):
        includeUnknown = serializers.BooleanField(required=False, default=False)

    class OutputSerializer(JobActionSerializer):
        # `requeued` is not part of the progress: the view passes it in the context.
        requeued = serializers.SerializerMethodField(help_text="Recipients queued again.")

        def get_requeued(self, progress: JobProgress) -> int:
            return self.context["requeued"]

    @extend_schema(
        request=InputSerializer,
        responses={
            202: documented(
                OutputSerializer,
                "Failed recipients queued again",
                schema.RETRIED_EXAMPLE,
                code=202,
            ),
            **error_responses(400, 401, 404, 409, 413, 429, texts=JOB_CONFLICT),
        },
    )
    def post(self, request: Request, job_id: str) -> Response:
        job = _job_or_404(request, job_id)
        data = self.InputSerializer(data=request.data or {})
        data.is_valid(raise_exception=True)
        queued = job_retry_failed(job=job, include_unknown=data.validated_data["includeUnknown"])
        progress = job_progress_get(job=job)
        body = self.OutputSerializer(progress, context={"requeued": queued}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)
