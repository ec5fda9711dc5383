"""HTTP API of SPEC §3.4: the best-deals email."""

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from communication.schema import JOB_ID
from communication.send_responses import (
    QueuedSerializer,
    SentNowSerializer,
    send_response,
    send_schema_responses,
)

from .services import best_deals_campaign_start

SENT_EXAMPLE = {
    "success": True,
    "queued": False,
    "jobId": JOB_ID,
    "total": 2,
    "sent": 2,
    "failed": 0,
    "results": [
        {"recipient": "ama@example.com", "status": "sent"},
        {"recipient": "someone@example.com", "status": "sent"},
    ],
    "rejected": [
        {"recipient": 17, "reason": "customer opted out of email"},
        {"recipient": "not-an-email", "reason": "Invalid address."},
    ],
}
NO_ACTIVE_DEAL = {409: ("No deal is active.", "There are no active deals to send.", {})}


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string"}]})
class CustomerOrAddressField(serializers.Field):
    """A skipped recipient: the customer's id, or the manual email address as typed."""

    def to_representation(self, value: Any) -> Any:
        return value


class SkippedRecipientSerializer(serializers.Serializer):
    recipient = CustomerOrAddressField()
    reason = serializers.CharField()


class BestDealsSendApi(APIView):
    """`POST /api/ecommerce/best-deals/send-email`: 200 when sent now, 202 when queued."""

    class InputSerializer(serializers.Serializer):
        customerIds = serializers.ListField(
            child=serializers.IntegerField(min_value=1), required=False, default=list
        )
        sendToAll = serializers.BooleanField(required=False, default=False)
        manualEmails = serializers.ListField(
            child=serializers.CharField(allow_blank=True, trim_whitespace=False),
            required=False,
            default=list,
        )

        def validate(self, attrs: dict) -> dict:
            if not (attrs["customerIds"] or attrs["sendToAll"] or attrs["manualEmails"]):
                raise serializers.ValidationError(
                    "Choose recipients: customerIds, sendToAll or manualEmails."
                )
            return attrs

    class SentNowOutputSerializer(SentNowSerializer):
        rejected = SkippedRecipientSerializer(many=True)

    class QueuedOutputSerializer(QueuedSerializer):
        rejected = SkippedRecipientSerializer(many=True)

    @extend_schema(
        request=InputSerializer,
        responses=send_schema_responses(
            SENT_EXAMPLE,
            SentNowOutputSerializer,
            QueuedOutputSerializer,
            errors=(400, 401, 409, 413, 429),
            error_texts=NO_ACTIVE_DEAL,
        ),
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sent = best_deals_campaign_start(
            owner=request.user,
            customer_ids=data.validated_data["customerIds"],
            send_to_all=data.validated_data["sendToAll"],
            manual_emails=data.validated_data["manualEmails"],
        )
        return send_response(sent, self.SentNowOutputSerializer, self.QueuedOutputSerializer)
