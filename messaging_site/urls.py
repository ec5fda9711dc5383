from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from communication.metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/communication/", include("communication.urls")),
    path("webhooks/anymail/", include("anymail.urls")),
    path("api/ecommerce/", include("ecommerce.urls")),
    path("api/queue/", include("queue_status.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("metrics", metrics_view, name="metrics"),
]


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    body = {"success": False, "error": f"Not found: {request.path}", "details": {}}
    return JsonResponse(body, status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    body = {"success": False, "error": "Internal server error.", "details": {}}
    return JsonResponse(body, status=500)


handler404 = not_found
handler500 = server_error
