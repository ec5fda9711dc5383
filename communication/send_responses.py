"""The answer of every send endpoint (SPEC §3.1): 200 with the results when sent within the
request, 202 with the progress URL when queued. The email and SMS APIs and the best-deals API
all answer through `send_response`."""

from django.urls import reverse
from rest_framework import status
from rest_framework.response import Response

from .models import DeliveryStatus, Job
from .services.claims import RELEASED
from .services.messages import MessageRequestResult

# A synchronous send's outcome per recipient, as the API and `sendbulk` report it.
RESULT_STATUS = {
    DeliveryStatus.SENT: "sent",
    DeliveryStatus.FAILED: "failed",
    DeliveryStatus.RETRY: "retrying",
    RELEASED: "queued",
}


def progress_url(job: Job) -> str:
    return reverse(f"communication:{job.channel}-progress") + f"?jobId={job.id}"


def send_response(sent: MessageRequestResult) -> Response:
    """The 200 (sent now) or 202 (queued) answer of every send endpoint."""
    result, rejected = sent.result, sent.rejected
    job = result.job
    if result.queued:
        body = {
            "success": True,
            "queued": True,
            "jobId": str(job.id),
            "total": job.total,
            "rejected": rejected,
            "progressUrl": progress_url(job),
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)
    assert result.report is not None
    results = []
    for outcome in sorted(result.report.outcomes, key=lambda o: o.delivery.pk):
        entry = {"recipient": outcome.delivery.recipient, "status": RESULT_STATUS[outcome.status]}
        if outcome.error:
            entry["error"] = outcome.error
        results.append(entry)
    sent_count = result.report.count(DeliveryStatus.SENT)
    body = {
        "success": sent_count == job.total,
        "queued": False,
        "jobId": str(job.id),
        "total": job.total,
        "sent": sent_count,
        "failed": result.report.count(DeliveryStatus.FAILED),
        "results": results,
        "rejected": rejected,
    }
    return Response(body, status=status.HTTP_200_OK)
