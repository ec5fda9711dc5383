"""`Idempotency-Key` on the send endpoints: a repeated request gets the first answer back.

Per user and key, Redis holds one record:
- `SET NX` of a *pending* marker (with the request's fingerprint) before the view runs, so that
  of two concurrent requests only one sends; the other gets 409 while the first runs;
- then the view's status code and JSON body, kept `IDEMPOTENCY_TTL` seconds (default 24 h).

A repeat with the same fingerprint (method, path and JSON body) gets the stored response with
`Idempotent-Replayed: true`; the same key with another body gets 422. Only 2xx answers are
stored: after a 4xx or an exception the marker is removed, so the client may fix and retry.
"""

import functools
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response

from .exceptions import ApplicationError
from .stores import get_redis

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
DEFAULT_TTL = 24 * 3600
# How long a pending marker outlives a request that died without clearing it.
PENDING_TTL = 15 * 60

View = Callable[..., Response]


def _ttl() -> int:
    return max(int(getattr(settings, "IDEMPOTENCY_TTL", DEFAULT_TTL)), DEFAULT_TTL)


def _fingerprint(request: Request) -> str:
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _redis_key(request: Request, key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"idempotency:{request.user.pk}:{digest}"


def _check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise ApplicationError(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
            {"header": HEADER},
        )


def _replay(stored: dict[str, Any], fingerprint: str) -> Response:
    if stored.get("fingerprint") != fingerprint:
        raise ApplicationError(
            f"This {HEADER} was used with a different request.", {"header": HEADER}, status=422
        )
    if stored.get("state") != "done":
        raise ApplicationError(
            f"A request with this {HEADER} is still in progress.", {"header": HEADER}, status=409
        )
    return Response(stored["body"], status=stored["status"], headers={REPLAYED_HEADER: "true"})


def idempotent(view: View) -> View:
    """Decorate an `APIView.post` so that `Idempotency-Key` makes it safe to repeat."""

    @functools.wraps(view)
    def wrapper(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return view(self, request, *args, **kwargs)
        _check_key(key)
        fingerprint = _fingerprint(request)
        name = _redis_key(request, key)
        pending = json.dumps({"state": "pending", "fingerprint": fingerprint})
        store = get_redis()
        try:
            if not store.set(name, pending, nx=True, ex=PENDING_TTL):
                stored = store.get(name)
                if stored is not None:
                    return _replay(json.loads(stored), fingerprint)
                # Expired between the two calls: claim it once more.
                if not store.set(name, pending, nx=True, ex=PENDING_TTL):
                    return _replay(json.loads(store.get(name) or pending), fingerprint)
        except redis.RedisError as err:
            logger.warning("idempotency store unavailable: %s", err)
            raise ApplicationError(
                "The idempotency store is unavailable; try again.", status=503
            ) from err
        try:
            response = view(self, request, *args, **kwargs)
        except BaseException:
            _forget(store, name)
            raise
        if 200 <= response.status_code < 300:
            done = {
                "state": "done",
                "fingerprint": fingerprint,
                "status": response.status_code,
                "body": response.data,
            }
            try:
                store.set(name, json.dumps(done, default=str), ex=_ttl())
            except redis.RedisError:
                logger.warning("could not store the response of %s %s", HEADER, key)
        else:
            _forget(store, name)
        return response

    return wrapper


def _forget(store: redis.Redis, name: str) -> None:
    try:
        store.delete(name)
    except redis.RedisError:
        logger.warning("could not clear idempotency marker %s", name)
