"""Reads: jobs visible to a user, and a job's progress."""

import uuid
from dataclasses import dataclass

import redis
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from .models import Delivery, Job, JobStatus
from .progress import JobCounts
from .senders import provider_for
from .services.finishing import job_counts_from_db
from .stores import get_circuit_breaker, get_progress_store


def job_list(
    *, user: AbstractBaseUser, channel: str | None = None, status: str | None = None
) -> QuerySet[Job]:
    """The jobs `user` may see (staff: every job), newest first."""
    jobs = Job.objects.all() if user.is_staff else Job.objects.filter(owner=user)
    if channel:
        jobs = jobs.filter(channel=channel)
    if status:
        jobs = jobs.filter(status=status)
    return jobs.order_by("-created_at")


def job_get(*, user: AbstractBaseUser, job_id: object, channel: str | None = None) -> Job | None:
    """The job if it exists and `user` may see it; None for a malformed or unknown id."""
    try:
        job_uuid = uuid.UUID(str(job_id))
    except ValueError:
        return None
    return job_list(user=user, channel=channel).filter(id=job_uuid).first()


def delivery_list(*, job: Job, status: str | None = None) -> QuerySet[Delivery]:
    deliveries = job.deliveries.order_by("id")
    return deliveries.filter(status=status) if status else deliveries


@dataclass(frozen=True)
class JobProgress:
    job: Job
    counts: JobCounts
    status: str  # the job's, except that a queued job whose batches started is running
    pause: tuple[str, str] | None = None  # (until, reason) while the channel's circuit is open


def job_progress_get(*, job: Job) -> JobProgress:
    """Live counters while the job runs (one Redis read); the rows' counts otherwise."""
    counts = None
    if job.is_active:
        counts = get_progress_store().get(job.id)
    if counts is None or counts.total != job.total:
        counts = job_counts_from_db(job.id)
    status = job.status
    if status == JobStatus.QUEUED and (counts.active or counts.completed or counts.failed):
        status = JobStatus.RUNNING
    pause = channel_pause_get(job.channel) if job.is_active else None
    return JobProgress(job=job, counts=counts, status=status, pause=pause)


def channel_pause_get(channel: str) -> tuple[str, str] | None:
    """(until, reason) while the channel's provider circuit is open, else None."""
    try:
        return get_circuit_breaker(channel, provider_for(channel)).status()
    except redis.RedisError:
        return None
