from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from communication.error_envelope import error_body
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
    return JsonResponse(error_body(f"Not found: {request.path}"), status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse(error_body("Internal server error."), status=500)


handler404 = not_found
handler500 = server_error
