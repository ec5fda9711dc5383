"""The admin's queue page (live workers and what waits in each queue), added to the jobs admin,
and the "Sending operations" module of the admin index that links to it."""

import redis
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from communication.admin import JobAdmin
from communication.models import Job

from . import selectors

admin.site.index_template = "admin/queue_status/index.html"


class JobAdminWithQueues(JobAdmin):
    def get_urls(self) -> list[URLPattern]:
        page = path(
            "queues/", self.admin_site.admin_view(self.queues_view), name="communication_queues"
        )
        return [page, *super().get_urls()]

    def queues_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Queues and workers",
            "opts": self.opts,
            "broker": selectors.broker_description(),
        }
        try:
            workers = selectors.worker_status_list(refresh="refresh" in request.GET)
            context["queues"] = selectors.queue_status_list(workers=workers)
            context["workers"] = workers
        except redis.RedisError as err:
            context["error"] = f"Redis is unavailable: {err}"
        return TemplateResponse(request, "admin/queue_status/queues.html", context)


admin.site.unregister(Job)
admin.site.register(Job, JobAdminWithQueues)
