"""Following a job through the API the way a user would."""

from typing import Any

from .servers import wait_until

COUNTS = ("pending", "active", "completed", "failed", "cancelled", "unknown")


def poll_progress(api: Any, channel: str, job_id: str, timeout: float = 60.0) -> list[dict]:
    """Poll progress until the job is final; every poll must be self-consistent and the share
    done must never go backwards. Returns every poll's body."""
    polls: list[dict] = []

    def final() -> bool:
        body = api.get(f"/api/communication/{channel}/progress", {"jobId": job_id}).json()
        polls.append(body)
        assert sum(body[k] for k in COUNTS) == body["total"], body
        return body["status"] not in ("queued", "running")

    wait_until(final, timeout, 0.2, f"job {job_id} to finish")
    shares = [p["progress"] for p in polls]
    assert shares == sorted(shares), f"progress went backwards: {shares}"
    return polls
