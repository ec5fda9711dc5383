from django.urls import path

from .apis import QueueStatusApi

app_name = "queue_status"

urlpatterns = [
    path("workers/init", QueueStatusApi.as_view(), name="workers-init"),
]
