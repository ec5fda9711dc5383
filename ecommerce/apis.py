"""HTTP API of SPEC §3.4: the best-deals email."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from communication.send_responses import send_response

from .services import best_deals_campaign_start


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

    @extend_schema(request=InputSerializer, responses={200: dict, 202: dict, 400: dict})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sent = best_deals_campaign_start(
            owner=request.user,
            customer_ids=data.validated_data["customerIds"],
            send_to_all=data.validated_data["sendToAll"],
            manual_emails=data.validated_data["manualEmails"],
        )
        return send_response(sent)
