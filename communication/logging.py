"""Structured logs: one JSON object per line, carrying the job and delivery a record is about.

Enable in settings.LOGGING (see `LOG_FORMAT=json`) with the formatter
`communication.logging.JsonFormatter` and the filter `communication.logging.ContextFilter`.

The ids come from two places, the explicit one winning:
- `logger.info("sent", extra={"job_id": job.id, "delivery_id": d.id})`;
- `with log_context(job_id=job.id):` around a batch, so every record inside carries the id
  (contextvars: right for threads and for Celery's prefork children alike).
"""

import contextlib
import contextvars
import datetime
import json
import logging
from collections.abc import Iterator
from typing import Any

CONTEXT_FIELDS = ("job_id", "delivery_id", "channel", "provider", "task_id", "attempt")

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "messaging_log_context", default=None
)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` (job_id=…, delivery_id=…) to every record logged inside the block."""
    current = _context.get() or {}
    token = _context.set({**current, **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Copies the `log_context` fields onto each record (explicit `extra=` values win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_context.get() or {}).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", "job_id", "delivery_id", …, "exc_info"}` per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = _jsonable(value)
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)
