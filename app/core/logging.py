"""Structured logging: one JSON object per line in production, readable lines in development.

Every record carries the request id of the request it belongs to (from a context
variable set by the request middleware), so a request's lines can be joined up.
Fields passed with `extra=` become JSON keys, or `key=value` pairs in text.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import time
from contextvars import ContextVar
from logging.handlers import QueueHandler, QueueListener
from queue import SimpleQueue
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
    The line is composed here rather than by `logging.Formatter.format`, which
    would need a copy of the record (shared with other handlers) to escape it.
    """

    def __init__(self) -> None:
        super().__init__()
        # strftime for the whole second, reused by every record in that second.
        self._second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{self._timestamp(record)} {record.levelname} {record.name}: "
            f"{escape_control(record.getMessage())}"
        )
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
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line

    def _timestamp(self, record: logging.LogRecord) -> str:
        second, stamp = self._second
        if int(record.created) != second:
            second = int(record.created)
            stamp = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = (second, stamp)
        return f"{stamp},{int(record.msecs):03d}"

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


class _HandOff(QueueHandler):
    """Puts records on the writer's queue as they are; the writer thread formats them.

    `QueueHandler.prepare` would format in the calling thread (for queues that
    pickle); this queue stays in the process, so only the message is resolved
    here, while its arguments are still what the caller passed.
    """

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record.msg, record.args = record.getMessage(), None
        return record


# The thread that formats and writes every record of this process, and whether
# it is stopped (queue drained) at interpreter exit and around a fork.
_writer: QueueListener | None = None
_stop_registered = False
# The writer stopped by `_pause_for_fork`, to be started again on both sides.
_paused: QueueListener | None = None


def _pause_for_fork() -> None:
    """Drain and stop the writer before a fork, so that no line is written twice.

    A thread does not survive `fork()`: a child forked with the writer running
    (gunicorn's workers forked from a preloaded app, bulk scoring's forked
    workers) would queue records that nothing ever writes, and would copy the
    records still queued in the parent, writing them a second time.
    """
    global _paused
    if _writer is not None and _paused is None:
        _writer.stop()
        _paused = _writer


def _resume_after_fork() -> None:
    global _paused
    if _paused is not None:
        _paused.start()
        _paused = None


def configure_logging(settings: Settings) -> None:
    """Route the app's, uvicorn's and libraries' logs through one structured handler.

    Formatting and writing happen on a writer thread, so a request never waits
    on a slow stderr; the queue is unbounded, so no line is dropped, and
    `stop_log_writer` (also run at exit) writes what is still queued.
    """
    global _writer, _stop_registered
    stop_log_writer()
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(build_formatter(settings))
    records: SimpleQueue[logging.LogRecord] = SimpleQueue()
    handler = _HandOff(records)
    # In the caller's thread: the request id lives in the request's context.
    handler.addFilter(_RequestIdFilter())
    _writer = QueueListener(records, stream)
    _writer.start()
    if not _stop_registered:
        atexit.register(stop_log_writer)
        os.register_at_fork(
            before=_pause_for_fork,
            after_in_parent=_resume_after_fork,
            after_in_child=_resume_after_fork,
        )
        _stop_registered = True
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    route_server_loggers()


def route_server_loggers() -> None:
    """Send uvicorn's own lines through the app's handler, and drop its access line.

    Also called in each gunicorn worker: its worker class points uvicorn's loggers
    at gunicorn's plain-text handlers when it starts, after the app was configured.
    """
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # The request middleware logs every request once, with more than uvicorn's
    # access line has (request id, client id, route template, duration).
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False


def output_handler() -> logging.Handler | None:
    """The handler the writer thread formats and writes with (None before configuration)."""
    return _writer.handlers[0] if _writer is not None else None


def flush_logs() -> None:
    """Return once every record logged so far has been written."""
    if _writer is not None:
        # stop() drains the queue and joins the thread; the listener restarts cleanly.
        _writer.stop()
        _writer.start()


def stop_log_writer() -> None:
    """Write every queued record, then stop the writer thread (before `os._exit`)."""
    global _writer
    if _writer is not None:
        _writer.stop()
        _writer = None
