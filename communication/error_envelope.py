"""The body of every error answer: `{"success": false, "error": "...", "details": {...}}`.

DRF views (through `api_errors.exception_handler`), the SMS webhooks and the JSON 404/500 pages
all answer errors with `error_body`. It lives apart from `api_errors` because that module imports
`rest_framework.views`, which reads the DRF settings, which name `api_errors`: imported first
from a plain Django view, it would import itself half-initialised.
"""

from typing import Any

from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """The body of every error answer."""

    success = serializers.BooleanField(help_text="Always false.")
    error = serializers.CharField(help_text="What went wrong, for people.")
    details = serializers.DictField(help_text="Field errors or context; may be empty.")


def error_body(message: str, details: Any = None) -> dict[str, Any]:
    return ErrorSerializer({"success": False, "error": message, "details": details or {}}).data
