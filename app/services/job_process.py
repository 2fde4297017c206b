"""What every job process (training, bulk scoring) does around its own work: read the
settings its launcher handed over, lower its priority, run, and leave at once when
its job is cancelled. Light on imports: the web workers import the bulk job module."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import psutil
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.errors import NotFound
from app.core.logging import configure_logging, stop_log_writer
from app.db.database import open_database

logger = logging.getLogger(__name__)

# Exit status of a job process that stopped because its job was cancelled or timed out.
ABANDONED_EXIT_STATUS = 3


class FinishedJob(Protocol):
    """What a job's row says once its process is done with it."""

    job_id: str
    status: str


Execute = Callable[[sessionmaker[Session], Settings, str, Callable[[], None]], FinishedJob]


def read_settings_file(path: Path) -> Settings:
    """Read and delete the settings file a launcher wrote (see `write_settings_file`)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        info = os.fstat(fd)
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            raise PermissionError(f"{path} must be owned by this user and mode 0600")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            values = json.loads(handle.read())
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return Settings(_env_file=None, **values)


def end_worker_processes() -> None:
    """SIGTERM every process this job started: its fits' worker processes.

    Called from the heartbeat thread, so no signal disposition may be changed
    here (only the main thread can), and the job's own process group cannot be
    signalled without signalling the job itself: its descendants are found and
    signalled one by one instead. Left alone, they would finish their fit as orphans.
    """
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()


def abandon() -> None:
    """Leave at once: the job was cancelled or timed out (called from the heartbeat thread)."""
    logger.warning("job abandoned: cancelled or timed out")
    end_worker_processes()
    stop_log_writer()
    logging.shutdown()
    # The main thread may be deep in its work; nothing it would still write is wanted.
    os._exit(ABANDONED_EXIT_STATUS)


def run_job_process(argv: list[str], *, module: str, kind: str, execute: Execute) -> int:
    """`python -m <module> JOB_ID SETTINGS_FILE`: run job JOB_ID with `execute`.

    Exit status 0 when the job succeeded, 1 when it failed, ABANDONED_EXIT_STATUS
    when it was cancelled before it started, 2 for a wrong command line.
    """
    if len(argv) != 2:
        sys.stderr.write(f"usage: python -m {module} JOB_ID SETTINGS_FILE\n")
        return 2
    job_id, settings_file = argv
    settings = read_settings_file(Path(settings_file))
    configure_logging(settings)
    # Lower priority than the web workers: predictions must keep flowing.
    os.nice(10)
    with open_database(settings.database_url, migrate=False) as database:
        try:
            job = execute(database.sessions, settings, job_id, abandon)
        except NotFound as exc:
            # Cancelled (or reaped) before this process got to start it.
            logger.warning(f"{kind} job not started", extra={"job_id": job_id, "reason": str(exc)})
            return ABANDONED_EXIT_STATUS
    logger.info(f"{kind} job finished", extra={"job_id": job.job_id, "status": job.status})
    return 0 if job.status == "succeeded" else 1
