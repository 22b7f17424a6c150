"""Structured JSON logging that carries job_id, gallery_id and image_id.

Bind ids for the duration of one event with :func:`log_context`; every record
logged inside it, from any module, carries them::

    with log_context(job_id=e.job_id, gallery_id=e.gallery_id, image_id=e.image_id):
        log.info("validated", extra={"format": "jpeg"})

Formatting is python-json-logger's; the ids travel in a :mod:`contextvars`
variable so concurrent asyncio tasks never mix them up.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

CONTEXT_FIELDS = ("job_id", "gallery_id", "image_id", "correlation_id", "provider_job_id")
_context: ContextVar[dict[str, str]] = ContextVar("darkroom_log_context", default={})  # noqa: B039


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Bind ``fields`` (``None`` values skipped) to every record logged inside the block."""
    merged = {**_context.get(), **{k: str(v) for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, str]:
    """Return a copy of the ids bound by the enclosing :func:`log_context` blocks."""
    return dict(_context.get())


class ContextFilter(logging.Filter):
    """Copy the bound ids and the service name onto each record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        """Add ``service`` and the context ids to ``record``; never drops a record."""
        record.service = self.service
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def configure_logging(service: str, *, level: str = "INFO", json_lines: bool = True) -> None:
    """Send every log record to stderr, as JSON lines or plain text, with the context ids.

    Replaces the root logger's handlers, so call it once at service start-up.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter(service))
    if json_lines:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
                timestamp=False,
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(service)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
