"""Structured logging: one JSON object per line in production, readable lines in development.

Every record carries the request id of the request it belongs to (from a context
variable set by the request middleware), so a request's lines can be joined up.
Fields passed with `extra=` become JSON keys, or `key=value` pairs in text.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from app.core.config import Settings

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Attributes that only carry formatting for another library's own handler (uvicorn
# passes its message again with ANSI colours as `color_message`): never data.
_FORMATTING_ONLY = frozenset({"color_message"})

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


# C0 controls, DEL, C1 controls (NEL among them), the Unicode line and paragraph
# separators and the bidirectional overrides: any of them in a logged value could
# start a forged line or disguise one on a terminal (ESC begins ANSI sequences).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_control(text: str) -> str:
    """`text` with every control character written as a visible escape (\\n, \\x1b, ...)."""
    return _CONTROL.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


class TextFormatter(logging.Formatter):
    """`time level logger: message key=value ...` with the request id when there is one.

    One record is one line: control characters in the message and in every field
    are escaped, and traceback lines are indented so none can pass for a record.
    """

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        # A copy: the record is shared with any other handler, which must see it unchanged.
        clean = logging.makeLogRecord(record.__dict__)
        clean.msg, clean.args = escape_control(record.getMessage()), None
        clean.exc_text = None
        line, newline, trace = super().format(clean).partition("\n")
        extras = {
            k: v
            for k, v in record.__dict__.items()
            if k not in _STANDARD and k not in _FORMATTING_ONLY
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            extras = {"request_id": request_id, **extras}
        if extras:
            line += " " + " ".join(
                f"{escape_control(str(k))}={_short(v)}" for k, v in extras.items()
            )
        return line + newline + trace

    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 (logging's name)
        return _indented(super().formatStack(stack_info))


def _indented(text: str) -> str:
    return "\n".join("    " + escape_control(part) for part in text.splitlines())


def _short(value: Any) -> str:
    text = escape_control(str(value))
    if text and not any(ch in text for ch in " \"'="):
        return text
    return '"' + text.replace('"', '\\"') + '"'


def build_formatter(settings: Settings) -> logging.Formatter:
    """The log formatter the settings ask for: JSON lines in production, text otherwise."""
    use_json = settings.log_format == "json" or (
        settings.log_format == "auto" and settings.is_production
    )
    if use_json:
        return JsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
            reserved_attrs=[*RESERVED_ATTRS, *_FORMATTING_ONLY],
        )
    return TextFormatter()


def configure_logging(settings: Settings) -> None:
    """Route the app's, uvicorn's and libraries' logs through one structured handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(build_formatter(settings))
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
