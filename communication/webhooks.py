"""SMS provider callbacks: delivery receipts and inbound messages (opt-outs).

`POST /api/communication/webhooks/sms/<provider>/` takes delivery reports and
`…/<provider>/inbound/` incoming messages, where `<provider>` is what deliveries record as their
provider: an alias of `SMS_PROVIDERS`, or the `SMS_BACKEND` (`webhook`, `twilio`, `arkesel`).
There is no token auth: each provider proves itself its own way.

- generic webhook: JSON `{"id", "status"}` (or a list of them), header `X-Signature`: hex
  HMAC-SHA256 of the raw body with the provider's `secret=` or `SMS_WEBHOOK_SECRET`;
  inbound `{"from", "message"}` signed the same way.
- Twilio: form posts (status callback `MessageSid`/`MessageStatus`; incoming `From`/`Body`)
  signed in `X-Twilio-Signature` with the account's auth token.
- Arkesel: delivery reports with the shared secret in the query (`?secret=`).
"""

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from . import receipts
from .backends.sms.pool import ProviderConfig, provider_config
from .conf import get_setting
from .error_envelope import error_body
from .models import Channel, ReceiptStatus, Suppression, SuppressionReason
from .recipients import normalise_phone
from .suppression import suppression_add, suppression_key

logger = logging.getLogger(__name__)

SINGLE_PROVIDER_KINDS = ("webhook", "twilio", "arkesel")
GENERIC_RECEIPTS = {
    "delivered": ReceiptStatus.DELIVERED,
    "failed": ReceiptStatus.UNDELIVERABLE,
    "undeliverable": ReceiptStatus.UNDELIVERABLE,
}
TWILIO_RECEIPTS = {
    "delivered": ReceiptStatus.DELIVERED,
    "read": ReceiptStatus.DELIVERED,
    "undelivered": ReceiptStatus.UNDELIVERABLE,
    "failed": ReceiptStatus.UNDELIVERABLE,
}
ARKESEL_RECEIPTS = {
    "delivered": ReceiptStatus.DELIVERED,
    "delivrd": ReceiptStatus.DELIVERED,
    "failed": ReceiptStatus.UNDELIVERABLE,
    "undelivered": ReceiptStatus.UNDELIVERABLE,
    "undeliverable": ReceiptStatus.UNDELIVERABLE,
    "rejected": ReceiptStatus.UNDELIVERABLE,
    "expired": ReceiptStatus.UNDELIVERABLE,
}
# Twilio error 21610: the recipient has replied STOP to this sender.
TWILIO_OPTED_OUT_ERROR = "21610"
# Carrier-standard keywords (as Twilio's opt-out handling): the whole message, any case.
OPT_OUT_KEYWORDS = {"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"}
OPT_IN_KEYWORDS = {"START", "UNSTOP", "YES"}
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


class Provider:
    """The provider a callback claims to come from: its kind and secrets."""

    def __init__(self, alias: str, config: ProviderConfig | None, kind: str) -> None:
        self.alias = alias
        self.kind = kind
        self.config = config

    @property
    def secret(self) -> str:
        return (self.config.secret if self.config else "") or get_setting("SMS_WEBHOOK_SECRET")

    @property
    def twilio_auth_token(self) -> str:
        token = self.config.credential("auth_token") if self.config else ""
        return token or get_setting("TWILIO_AUTH_TOKEN")


def _provider(alias: str) -> Provider | None:
    config = provider_config(alias)
    if config is not None:
        return Provider(alias, config, config.kind)
    return Provider(alias, None, alias) if alias in SINGLE_PROVIDER_KINDS else None


def twilio_signature(url: str, params: Iterable[tuple[str, str]], auth_token: str) -> str:
    """Twilio's `X-Twilio-Signature`: base64 HMAC-SHA1 of the URL followed by each POST
    parameter's name and value, sorted by name then value, repeats once (as twilio-python)."""
    payload = url + "".join(f"{name}{value}" for name, value in sorted(set(params)))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def body_signature(body: bytes, secret: str) -> str:
    """The generic provider's `X-Signature`: hex HMAC-SHA256 of the raw body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _authentic(request: HttpRequest, provider: Provider) -> bool:
    if provider.kind == "twilio":
        token = provider.twilio_auth_token
        if not token:
            return False
        params = [(k, v) for k, values in request.POST.lists() for v in values]
        expected = twilio_signature(request.build_absolute_uri(), params, token)
        return hmac.compare_digest(expected, request.headers.get("X-Twilio-Signature", ""))
    secret = provider.secret
    if not secret:
        return False
    if provider.kind == "arkesel":
        return hmac.compare_digest(secret, request.GET.get("secret", ""))
    given = request.headers.get("X-Signature", "").removeprefix("sha256=")
    return hmac.compare_digest(body_signature(request.body, secret), given)


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse(error_body(message), status=status)


def _webhook(handle: Callable[[HttpRequest, Provider], HttpResponse]) -> Callable[..., Any]:
    """Resolve the provider, check its signature, then call `handle`."""

    @csrf_exempt
    @require_http_methods(["GET", "POST"])
    def view(request: HttpRequest, provider: str) -> HttpResponse:
        resolved = _provider(provider)
        if resolved is None:
            return _error(f"Unknown SMS provider {provider!r}.", 404)
        if not _authentic(request, resolved):
            logger.warning("rejected %s callback with a missing or wrong signature", provider)
            return _error("Invalid or missing signature.", 403)
        try:
            return handle(request, resolved)
        except (ValueError, TypeError, AttributeError) as err:  # malformed body
            return _error(f"Malformed callback: {err}", 400)

    return view


def _json_events(request: HttpRequest) -> list[dict[str, Any]]:
    body = json.loads(request.body or b"{}")
    events = body if isinstance(body, list) else [body]
    if not all(isinstance(event, dict) for event in events):
        raise ValueError("expected a JSON object or a list of objects")
    return events


def _record(provider: Provider, message_id: str, status: str | None) -> int:
    if status is None:
        return 0  # an intermediate state (queued, sent, …)
    return receipts.delivery_receipt_record(
        providers=[provider.alias], message_id=message_id, status=status
    )


def _receipt(request: HttpRequest, provider: Provider) -> HttpResponse:
    updated = 0
    if provider.kind == "twilio":
        data = request.POST
        status = TWILIO_RECEIPTS.get(data.get("MessageStatus", "").lower())
        updated = _record(provider, data.get("MessageSid", ""), status)
        if data.get("ErrorCode") == TWILIO_OPTED_OUT_ERROR and data.get("To"):
            _opt_out(data["To"], f"twilio:{provider.alias}")
    elif provider.kind == "arkesel":
        data = request.POST if request.method == "POST" and request.POST else request.GET
        if request.content_type == "application/json":
            data = _json_events(request)[0]
        message_id = str(data.get("sms_id") or data.get("id") or data.get("message_id") or "")
        status = ARKESEL_RECEIPTS.get(str(data.get("status", "")).lower())
        updated = _record(provider, message_id, status)
    else:
        for event in _json_events(request):
            status = GENERIC_RECEIPTS.get(str(event.get("status", "")).lower())
            updated += _record(provider, str(event.get("id") or ""), status)
    return JsonResponse({"success": True, "updated": updated})


def _e164(number: str) -> str:
    try:
        return normalise_phone(number, get_setting("DEFAULT_PHONE_REGION"))
    except ValueError:
        return number


def _opt_out(number: str, source: str) -> None:
    reason = SuppressionReason.OPTED_OUT
    suppression_add(channel=Channel.SMS, address=_e164(number), reason=reason, source=source)


def _opt_in(number: str) -> None:
    Suppression.objects.filter(
        channel=Channel.SMS,
        address=suppression_key(Channel.SMS, _e164(number)),
        reason=SuppressionReason.OPTED_OUT,
    ).delete()


def _inbound(request: HttpRequest, provider: Provider) -> HttpResponse:
    if provider.kind == "twilio":
        number, text = request.POST.get("From", ""), request.POST.get("Body", "")
    else:
        event = _json_events(request)[0]
        number, text = str(event.get("from") or ""), str(event.get("message") or "")
    keyword = " ".join(text.upper().replace(".", " ").replace("!", " ").split())
    if number and keyword in OPT_OUT_KEYWORDS:
        _opt_out(number, f"{provider.kind}:{provider.alias}")
    elif number and keyword in OPT_IN_KEYWORDS:
        _opt_in(number)
    if provider.kind == "twilio":
        return HttpResponse(EMPTY_TWIML, content_type="text/xml")
    return JsonResponse({"success": True})


sms_receipt_webhook = _webhook(_receipt)
sms_inbound_webhook = _webhook(_inbound)
