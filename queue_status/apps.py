from django.apps import AppConfig


class QueueStatusConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "queue_status"

    def ready(self) -> None:
        from communication.metrics import collector_register

        from .metrics import QueueDepthCollector

        collector_register(QueueDepthCollector())
