"""Sending a claimed batch at its rate-limit slots (`claim_send`).

Every send path (queued batches, the synchronous path, the command line) goes through
`claim_send`, so every send holds a claim on its delivery row (`claims`) and a slot of the
global rate limiter. Before the provider is called, the delivery is recorded as handed over
under its claim (`handovers`), in the same atomic call that checks the job's cancel flag and
confirms the previous send; a claim whose worker died is resolved by `recovery`: confirmed →
sent, handed over → `unknown`, not handed over → unsent again. Nothing recorded as sent or
handed over is sent again.
"""

import contextlib
import itertools
import logging
import random
import time
from collections import deque
from typing import Any

import redis

from ..conf import get_setting
from ..exceptions import CommunicationError, RateLimiterUnavailable
from ..handovers import HANDED, Confirmed
from ..metrics import record_rate_limit_wait
from ..models import Delivery, DeliveryStatus, Job
from ..rate_limit import RateLimiter, Reservation
from ..senders import Sender
from ..stores import get_batch_gate, get_circuit_breaker, get_handovers
from .claims import RELEASED, Claim, Outcome, SendReport

logger = logging.getLogger(__name__)

# Every countdown we put on a task stays far inside the broker's visibility timeout, so a delayed
# task is never redelivered while it waits; longer waits are taken in several hops.
MAX_COUNTDOWN = 60.0
REDIS_DOWN_WAIT = 5.0
HANDOVER_AHEAD = 0.005  # record hand-overs of sends due within this many seconds in one call


def retry_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds before retry number `attempt` (1-based): exponential, with jitter, capped.

    The jitter keeps half the step (`[d/2, d]`), so retries stay spaced by the backoff; a
    provider's `Retry-After` is a floor (itself capped by `RETRY_BACKOFF_MAX`).
    """
    ceiling = min(
        get_setting("RETRY_BACKOFF_MAX"), get_setting("RETRY_BACKOFF") * 2 ** (attempt - 1)
    )
    delay = random.uniform(ceiling / 2, ceiling)
    return max(delay, min(retry_after or 0.0, get_setting("RETRY_BACKOFF_MAX")))


def claim_send(
    *,
    job: Job,
    claim: Claim,
    sender: Sender,
    limiter: RateLimiter,
    horizon: float,
    all_or_nothing: bool = False,
    pause: float = 0.0,
    batch_id: str = "",
) -> SendReport:
    """Send the claimed deliveries, each at a rate-limit slot; record nothing yet.

    The connection is opened and the first message built before the slots are reserved (up to
    `horizon` seconds ahead; with `all_or_nothing`, a slot for every delivery or none), so that
    the first slot is not missed. Deliveries without a slot, or left when the job is cancelled,
    the provider is unreachable, throttles the channel or keeps failing (circuit breaker), come
    back as RELEASED: waiting uses no retry. With a `pause`, each hand-over keeps the job's
    other batches from starting until `pause` seconds after this batch's next send (`batch_id`
    holds the job's gate, see `pacing`).
    Never raises: a send that fails unexpectedly is reported with an unknown outcome.
    """
    report = SendReport(provider=sender.provider)
    pending = list(claim.deliveries)
    guard = _BatchGuard(job, claim, pause, batch_id)
    health = _ChannelHealth(job.channel, sender.provider, limiter)
    slots: deque[float] = deque()
    replacements = 4 * len(pending)  # a bound, so a starved process cannot loop for ever
    prepared = None
    waited = 0.0
    try:
        sender.open()
        prepared = _prepare(sender, pending[0]) if pending else None
        reservation = _reserve(
            limiter, len(pending), horizon=horizon, all_or_nothing=all_or_nothing
        )
        slots.extend(reservation.slots)
        report.wait = reservation.wait
        while slots and pending:
            slot = slots.popleft()
            if guard.lease_running_out():
                break
            message = prepared if prepared is not None else _prepare(sender, pending[0])
            prepared = None
            if isinstance(message, Outcome):  # the message could not even be built
                report.outcomes.append(message)
                pending.pop(0)
                continue
            delay = slot - time.monotonic()
            if delay > 0:
                time.sleep(delay)
                waited += delay
            if reservation.is_late(slot):
                # Sending now could put two sends closer than the limit allows: drop this slot
                # and every other one already passed, and take new ones in one call.
                prepared = message
                while slots and reservation.is_late(slots[0]):
                    slots.popleft()
                missing = min(len(pending) - len(slots), replacements)
                if missing > 0:
                    replacements -= missing
                    slots.extend(_reserve(limiter, missing, horizon=horizon).slots)
                continue
            if not guard.hand_over(pending, slots):
                break
            outcome = _send_one(sender, pending.pop(0), message)
            report.outcomes.append(outcome)
            guard.confirm(outcome, sender.provider)
            pause = health.pause_after(outcome)
            if pause:
                report.wait = pause
                break
    except CommunicationError as err:
        # The provider could not even be reached: nobody was attempted, so no retry is used.
        logger.warning("%s provider %s unreachable: %s", job.channel, sender.provider, err)
        report.wait = health.pause_after_outage(err, len(pending))
    except Exception:
        # Whatever went wrong, the rows not attempted go back and the batch still records.
        logger.exception("batch of job %s stopped", job.id)
        report.wait = REDIS_DOWN_WAIT
    finally:
        sender.close()
    report.outcomes += [Outcome(delivery, RELEASED) for delivery in pending]
    if report.count(DeliveryStatus.SENT):
        health.record_success()
    if waited:
        record_rate_limit_wait(job.channel, waited)
    return report


class _ChannelHealth:
    """How long the whole channel must pause after an outcome: a provider's throttling
    (`Retry-After`), or a circuit breaker opened by consecutive transient failures."""

    def __init__(self, channel: str, provider: str, limiter: RateLimiter) -> None:
        self.breaker = get_circuit_breaker(channel, provider)
        self.limiter = limiter

    def pause_after(self, outcome: Outcome) -> float:
        if outcome.throttled and outcome.retry_in is not None:
            return self._pause(outcome.retry_in)
        if outcome.status != DeliveryStatus.RETRY:
            return 0.0
        in_a_row = self._trips(outcome.error, 1)
        if not in_a_row:
            return 0.0
        if in_a_row > self.breaker.threshold:
            # The probe after a cool-down failed: the provider is still down, which is no
            # reason to use up this recipient's retries.
            outcome.status, outcome.retry_in = RELEASED, None
        return self._pause(self.breaker.cooldown)

    def pause_after_outage(self, err: CommunicationError, recipients: int) -> float:
        if self._trips(str(err), recipients):
            return self._pause(self.breaker.cooldown)
        return get_setting("RETRY_BACKOFF")

    def record_success(self) -> None:
        with contextlib.suppress(redis.RedisError):
            self.breaker.record_success()

    def _trips(self, reason: str, failures: int) -> int:
        try:
            return self.breaker.record_failure(reason, failures)
        except redis.RedisError:
            return 0

    def _pause(self, seconds: float) -> float:
        with contextlib.suppress(RateLimiterUnavailable):
            self.limiter.pause(seconds)
        return seconds


class _BatchGuard:
    """When a batch must stop sending: the claim's lease is running out, or a hand-over could
    not be recorded — the job was cancelled (checked atomically with the record, so no send
    starts after a cancel), the claim was taken by recovery, or Redis is unreachable (a crash
    then could not be told from a send)."""

    def __init__(self, job: Job, claim: Claim, pause: float, batch_id: str) -> None:
        self.job = job
        self.claim = claim
        self.pause = pause
        self.batch_id = batch_id
        self.handovers = get_handovers()
        self.gate = get_batch_gate() if pause else None
        # Stop well before the lease ends: after it, recovery may give the rows to another lane.
        self.deadline = time.monotonic() + get_setting("DELIVERY_LEASE") * 0.8
        self.handed: set[int] = set()
        self.unconfirmed: list[Confirmed] = []

    def confirm(self, outcome: Outcome, provider: str) -> None:
        """Note a send the provider accepted: the next hand-over confirms it."""
        if outcome.status == DeliveryStatus.SENT:
            delivery_id = outcome.delivery.pk
            self.unconfirmed.append(Confirmed(delivery_id, provider, outcome.provider_message_id))

    def lease_running_out(self) -> bool:
        return time.monotonic() > self.deadline

    def hand_over(self, pending: list[Delivery], slots: deque[float]) -> bool:
        """Record `pending[0]` as handed to the provider before it is sent.

        At high rates the next sends' slots are only microseconds apart: they are recorded in
        the same call (a crash then reports at most those few as `unknown`, never re-sends).
        """
        if pending[0].pk in self.handed:
            return True
        now = time.monotonic()
        ahead = sum(
            1 for slot in itertools.islice(slots, len(pending) - 1) if slot <= now + HANDOVER_AHEAD
        )
        ids = [delivery.pk for delivery in pending[: 1 + ahead]]
        try:
            state = self.handovers.hand_over(
                self.claim.token,
                self.job.id,
                ids,
                confirmed=self.unconfirmed,
                also=self._gate_push(now, slots, ahead),
            )
        except redis.RedisError:
            return False
        self.handed.update(ids)
        self.unconfirmed = []
        return state == HANDED

    def _gate_push(self, now: float, slots: deque[float], ahead: int) -> Any:
        """Keep the job's gate shut until a pause after this batch's next send."""
        gate = self.gate
        if gate is None:
            return None
        next_send = slots[ahead] if len(slots) > ahead else now
        hold = max(next_send - now, 0.0) + self.pause
        return lambda pipe: gate.push(self.job.id, self.batch_id, hold, client=pipe)


def _reserve(
    limiter: RateLimiter, count: int, *, horizon: float, all_or_nothing: bool = False
) -> Reservation:
    """Slots within `horizon` seconds; none (with a wait) if Redis cannot be reached."""
    try:
        return limiter.reserve(count, horizon=horizon, all_or_nothing=all_or_nothing)
    except RateLimiterUnavailable as err:
        logger.warning("rate limiter unavailable, nothing is sent: %s", err)
        return Reservation(slots=[], wait=REDIS_DOWN_WAIT, lateness=0.0)


def _prepare(sender: Sender, delivery: Delivery) -> object:
    try:
        return sender.prepare(delivery)
    except Exception as err:
        logger.exception("cannot build the message of delivery %s", delivery.pk)
        return Outcome(delivery, DeliveryStatus.FAILED, error=f"cannot build the message: {err}")


def _send_one(sender: Sender, delivery: Delivery, message: object) -> Outcome:
    try:
        provider_message_id = sender.send(message)
    except CommunicationError as err:
        logger.info("send failed job=%s delivery=%s: %s", delivery.job_id, delivery.pk, err)
        return _failure(delivery, err)
    except Exception as err:
        # Not a classified provider error: the provider may have taken the message.
        logger.exception("unexpected error sending delivery %s", delivery.pk)
        return Outcome(delivery, DeliveryStatus.UNKNOWN, error=f"unexpected error: {err}"[:2000])
    logger.debug("sent job=%s delivery=%s", delivery.job_id, delivery.pk)
    return Outcome(delivery, DeliveryStatus.SENT, provider_message_id=provider_message_id or "")


def _failure(delivery: Delivery, err: CommunicationError) -> Outcome:
    error = str(err)[:2000] or type(err).__name__
    if not (err.retryable and delivery.attempts <= get_setting("MAX_RETRIES")):
        return Outcome(delivery, DeliveryStatus.FAILED, error=error)
    return Outcome(
        delivery,
        DeliveryStatus.RETRY,
        error=error,
        retry_in=retry_delay(delivery.attempts, err.retry_after),
        # HTTP 429 and SMTP 421 throttle the sender, not this recipient.
        throttled=err.status_code in (429, 421),
    )
