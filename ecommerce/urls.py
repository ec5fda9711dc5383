from django.urls import path

from . import apis, views

app_name = "ecommerce"

urlpatterns = [
    path("best-deals/send-email", apis.BestDealsSendApi.as_view(), name="best-deals-send-email"),
    path("unsubscribe/<str:token>/", views.customer_unsubscribe, name="unsubscribe"),
]
