"""`GET /api/queue/workers/init` (SPEC §3.5): which channels have live workers, and queue depths."""

import redis
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from communication.exceptions import ApplicationError
from communication.schema import error_responses
from communication.workers import workers_by_channel

from .selectors import queue_depths, worker_status_list

REDIS_UNAVAILABLE = (
    "Redis (the broker) cannot be reached.",
    "Redis is unavailable: Error 111 connecting to localhost:6379. Connection refused.",
    {},
)


class QueueStatusApi(APIView):
    class OutputSerializer(serializers.Serializer):
        success = serializers.BooleanField()
        workers = serializers.DictField(child=serializers.BooleanField())
        queues = serializers.DictField(
            child=serializers.DictField(child=serializers.IntegerField()),
            help_text='Per channel: {"pending": messages waiting in the broker}.',
        )

    @extend_schema(
        responses={
            200: OutputSerializer,
            **error_responses(401, 429, 503, texts={503: REDIS_UNAVAILABLE}),
        }
    )
    def get(self, request: Request) -> Response:
        try:
            depths = queue_depths()
            workers = worker_status_list()
        except redis.RedisError as err:
            raise ApplicationError(f"Redis is unavailable: {err}", status=503) from err
        body = {
            "success": True,
            "workers": workers_by_channel(workers),
            "queues": {channel: {"pending": pending} for channel, pending in depths.items()},
        }
        return Response(self.OutputSerializer(body).data)
