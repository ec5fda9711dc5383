"""Bringing a job to its final status, exactly once."""

import logging

from django.db.models import Count
from django.utils import timezone

from ..metrics import record_job_finished
from ..models import ACTIVE_JOB_STATUSES, Delivery, Job, JobStatus
from ..progress import JobCounts
from ..stores import get_progress_store

logger = logging.getLogger(__name__)


def job_counts_from_db(job_id: object) -> JobCounts:
    """The job's counts from its delivery rows (the source of truth)."""
    rows = Delivery.objects.filter(job_id=job_id).values("status").annotate(n=Count("id"))
    return JobCounts.from_statuses({row["status"]: row["n"] for row in rows})


def job_counts_copy(*, job: Job, counts: JobCounts) -> None:
    """Copy final counts onto the `job` instance (the database row was updated already)."""
    job.completed_count = counts.completed
    job.failed_count = counts.failed
    job.cancelled_count = counts.cancelled
    job.unknown_count = counts.unknown


def job_finish(*, job: Job) -> bool:
    """Give `job` its final status if every delivery is final; True if this call did it.

    The conditional UPDATE makes the transition happen once, whichever lane or sweep gets here.
    """
    counts = job_counts_from_db(job.id)
    if counts.pending or counts.active:
        return False
    status = JobStatus.COMPLETED
    if counts.failed or counts.unknown:
        status = JobStatus.COMPLETED_WITH_ERRORS
    now = timezone.now()
    finished = Job.objects.filter(id=job.id, status__in=ACTIVE_JOB_STATUSES).update(
        status=status,
        finished_at=now,
        completed_count=counts.completed,
        failed_count=counts.failed,
        cancelled_count=counts.cancelled,
        unknown_count=counts.unknown,
    )
    if finished:
        job.status, job.finished_at = status, now
        job_counts_copy(job=job, counts=counts)
        get_progress_store().delete(job.id)
        record_job_finished(job.channel, status, (now - job.created_at).total_seconds())
        logger.info("job %s finished: %s %s", job.id, status, counts.as_dict())
    return bool(finished)


def job_refresh_final_counts(*, job_id: object) -> None:
    """Re-count a job that is already final (a cancelled job's last batch just recorded)."""
    counts = job_counts_from_db(job_id)
    Job.objects.filter(id=job_id).exclude(status__in=ACTIVE_JOB_STATUSES).update(
        completed_count=counts.completed,
        failed_count=counts.failed,
        cancelled_count=counts.cancelled,
        unknown_count=counts.unknown,
    )
