from django.apps import AppConfig


class QueueStatusConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "queue_status"
