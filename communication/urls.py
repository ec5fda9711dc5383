from django.urls import path

from . import apis, webhooks
from .models import Channel

app_name = "communication"

urlpatterns = [
    path("email/send", apis.EmailSendApi.as_view(), name="email-send"),
    path(
        "email/progress",
        apis.JobProgressApi.as_view(channel=Channel.EMAIL),
        name="email-progress",
    ),
    path("sms/send", apis.SmsSendApi.as_view(), name="sms-send"),
    path("sms/progress", apis.JobProgressApi.as_view(channel=Channel.SMS), name="sms-progress"),
    path("jobs/", apis.JobListApi.as_view(), name="job-list"),
    path("jobs/<str:job_id>/", apis.JobDetailApi.as_view(), name="job-detail"),
    path(
        "jobs/<str:job_id>/recipients/",
        apis.JobRecipientListApi.as_view(),
        name="job-recipients",
    ),
    path("jobs/<str:job_id>/cancel/", apis.JobCancelApi.as_view(), name="job-cancel"),
    path(
        "jobs/<str:job_id>/retry-failed/",
        apis.JobRetryFailedApi.as_view(),
        name="job-retry-failed",
    ),
    path(
        "webhooks/sms/<str:provider>/",
        webhooks.sms_receipt_webhook,
        name="sms-receipt-webhook",
    ),
    path(
        "webhooks/sms/<str:provider>/inbound/",
        webhooks.sms_inbound_webhook,
        name="sms-inbound-webhook",
    ),
]
