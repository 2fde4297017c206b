"""Structured logging: one JSON object per line in production, readable lines in development.

Every record carries the request id of the request it belongs to (from a context
variable set by the request middleware), so a request's lines can be joined up.
Fields passed with `extra=` become JSON keys, or `key=value` pairs in text.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from app.core.config import Settings

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "request_id",
}


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class TextFormatter(logging.Formatter):
    """`time level logger: message key=value ...` with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        request_id = getattr(record, "request_id", None)
        if request_id:
            extras = {"request_id": request_id, **extras}
        if extras:
            line += " " + " ".join(f"{k}={_short(v)}" for k, v in extras.items())
        return line


def _short(value: Any) -> str:
    text = str(value)
    return repr(text) if " " in text else text


def _formatter(settings: Settings) -> logging.Formatter:
    use_json = settings.log_format == "json" or (
        settings.log_format == "auto" and settings.is_production
    )
    if use_json:
        return JsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
        )
    return TextFormatter()


def configure_logging(settings: Settings) -> None:
    """Route the app's, uvicorn's and libraries' logs through one structured handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_formatter(settings))
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # The request middleware logs every request once, with more than uvicorn's
    # access line has (request id, client id, route template, duration).
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
