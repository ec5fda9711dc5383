"""Every API error is JSON: `{"success": false, "error": "...", "details": {...}}` with a 4xx."""

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .error_envelope import error_body
from .exceptions import ApplicationError


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class SizeLimitedJSONParser(JSONParser):
    """JSON, refused with a 413 past `DATA_UPLOAD_MAX_MEMORY_SIZE` before it is read."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        request = (parser_context or {}).get("request")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        length = request.META.get("CONTENT_LENGTH") if request is not None else None
        if limit is not None and length and length.isdigit() and int(length) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as err:  # a few thousand nested arrays overflow the json module
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from err


def _summary(detail: Any) -> str:
    if isinstance(detail, dict):
        for field, value in detail.items():
            text = _summary(value)
            return text if field == "non_field_errors" else f"{field}: {text}"
    if isinstance(detail, list) and detail:
        return _summary(detail[0])
    return str(detail)


def error_response(message: str, status_code: int, details: Any = None) -> Response:
    return Response(error_body(message, details), status=status_code)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return error_response(exc.message, exc.status, exc.extra)
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    if isinstance(exc, exceptions.ValidationError):
        message = "Invalid input: " + _summary(detail)
        details = detail if isinstance(detail, dict) else {"non_field_errors": detail}
    else:
        message = _summary(detail.get("detail", detail) if isinstance(detail, dict) else detail)
        details = {}
    response.data = error_body(message, details)
    return response
