"""The public unsubscribe page behind the link and `List-Unsubscribe` header of each email."""

from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .models import OptOutSource
from .selectors import customer_get
from .services import customer_email_opt_out, shop_name
from .unsubscribe import unsubscribe_token_read

TEMPLATE = "ecommerce/unsubscribe.html"


def email_mask(email: str) -> str:
    """`ama.mensah@example.com` → `a*********@example.com`: enough to recognise, not to harvest."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}{'*' * max(len(local) - 1, 1)}@{domain}" if domain else ""


@csrf_exempt  # the signed token is the credential; RFC 8058 one-click POSTs carry no CSRF token
@require_http_methods(["GET", "POST"])
def customer_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a confirmation page with a POST form; POST opts the customer out of email.

    A POST is either that form or a mail client's RFC 8058 one-click request (body
    `List-Unsubscribe=One-Click`); both answer 200. A token that does not verify gets a 400
    page. A customer who no longer exists is shown as unsubscribed: there is nobody to email.
    """
    try:
        customer_id = unsubscribe_token_read(token=token)
    except signing.BadSignature:
        return render(request, TEMPLATE, {"state": "invalid", "shop_name": shop_name()}, status=400)
    customer = customer_get(customer_id=customer_id)
    if customer is not None and request.method == "POST":
        customer = customer_email_opt_out(customer=customer, source=OptOutSource.UNSUBSCRIBE_LINK)
    done = customer is None or customer.email_opted_out
    context = {
        "state": "done" if done else "confirm",
        "email": email_mask(customer.email) if customer else "",
        "shop_name": shop_name(),
    }
    response = render(request, TEMPLATE, context)
    response["Referrer-Policy"] = "no-referrer"  # keep the token out of other sites' logs
    return response
