"""The heartbeat a running training job keeps, and how it notices being abandoned.

A job's row is the only link between the process doing the work and everyone
else: the API that shows progress, a DELETE that cancels it, a reaper on
another replica. The beat keeps the row fresh and reads the answer back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.crud import training_job as crud
from app.services.training_jobs import mark_failed, timed_out_message

logger = logging.getLogger("app.services.job_heartbeat")

HEARTBEAT_SECONDS = 5.0


class Heartbeat:
    """Refreshes a job's heartbeat from a background thread while it runs.

    It also notices, at each beat, a job that someone else closed (DELETE, a
    reaper) and a job past its deadline, and then calls `on_abandoned` (the job
    process exits; train.py interrupts itself): that is how a job on another
    replica, or with no launcher left, is stopped.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        job_id: str,
        *,
        timeout: float,
        on_abandoned: Callable[[], None] | None,
        interval: float = HEARTBEAT_SECONDS,
        touch: Callable[[Session, str, datetime], int] | None = None,
        fail: Callable[[Session, str, str], bool] = mark_failed,
        timed_out: Callable[[float], str] = timed_out_message,
    ) -> None:
        self._sessions = sessions
        self._job_id = job_id
        self._deadline = time.monotonic() + timeout
        self._timeout = timeout
        self._on_abandoned = on_abandoned
        self._interval = interval
        # A training job's row by default; another kind of job passes its own.
        self._touch = touch or _touch_training_job
        self._fail = fail
        self._timed_out = timed_out
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop beating (before the job finishes itself, so that is not mistaken for a cancel)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(max(0.0, min(self._interval, self._remaining()))):
            try:
                with self._sessions() as session:
                    if self._remaining() <= 0:
                        self._fail(session, self._job_id, self._timed_out(self._timeout))
                        still_open = False
                    else:
                        still_open = bool(self._touch(session, self._job_id, datetime.now(UTC)))
                        session.commit()
            except SQLAlchemyError as exc:
                # A missed beat is harmless unless the outage outlasts STALE_AFTER_SECONDS.
                logger.warning(
                    "heartbeat update failed",
                    extra={"job_id": self._job_id, "error": type(exc).__name__},
                )
                continue
            if not still_open and not self._stop.is_set():
                logger.warning("job closed while running", extra={"job_id": self._job_id})
                if self._on_abandoned is not None:
                    self._on_abandoned()
                return

    def _remaining(self) -> float:
        return self._deadline - time.monotonic()


def _touch_training_job(session: Session, job_id: str, now: datetime) -> int:
    return crud.update_job(session, job_id, heartbeat_at=now)
