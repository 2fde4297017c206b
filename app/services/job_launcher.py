"""Starting a job's own process, handing it the settings in a 0600 file, and watching it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import PROJECT_ROOT, Settings, environment_without_settings
from app.crud import training_job as crud
from app.services.training_jobs import mark_failed, this_host, timed_out_message

logger = logging.getLogger(__name__)

# Job logs and settings files hold data and secrets: the service's user only.
JOB_DIR_MODE = 0o700
JOB_FILE_MODE = 0o600
# How often a watcher wakes to check its deadline and whether it should stop.
WATCH_INTERVAL_SECONDS = 0.5


@dataclass(frozen=True)
class JobKind:
    """What differs between the kinds of job a launcher starts: training, bulk scoring."""

    noun: str
    # Run as `python -m MODULE JOB_ID SETTINGS_FILE`.
    module: str
    record_process: Callable[[Session, str, str, int], int]
    fail: Callable[[Session, str, str], bool]
    timeout_seconds: Callable[[Settings], float]
    timed_out_message: Callable[[float], str]
    # Appended to the error of a job whose process died.
    crash_note: str = ""


def _record_training_process(session: Session, job_id: str, host: str, pid: int) -> int:
    return crud.update_job(session, job_id, host=host, pid=pid)


def _training_timeout(settings: Settings) -> float:
    return settings.training_timeout_seconds


TRAINING = JobKind(
    noun="training",
    module="app.services.job_runner",
    record_process=_record_training_process,
    fail=mark_failed,
    timeout_seconds=_training_timeout,
    timed_out_message=timed_out_message,
    crash_note="; the active model is unchanged",
)


def job_directory(model_dir: Path) -> Path:
    """MODEL_DIR/jobs, readable by the service's user only (job logs, settings files)."""
    path = model_dir / "jobs"
    path.mkdir(mode=JOB_DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, JOB_DIR_MODE)
    return path


def write_settings_file(settings: Settings, directory: Path, job_id: str) -> Path:
    """Write the job's settings (secrets included) to a new 0600 file; returns its path.

    The file is created with its final mode (O_EXCL, never world-readable for an
    instant) instead of passing secrets through the environment, which the
    process table exposes.
    """
    path = directory / f"{job_id}.settings.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, JOB_FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(settings.model_dump_json())
    return path


def job_environment() -> dict[str, str]:
    """The child's environment: ours without any setting (the settings file carries them)."""
    env = environment_without_settings()
    # One BLAS thread: the job must leave the other cores to the web workers.
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


class JobLauncher:
    """Starts job processes and watches each from a daemon thread until it ends.

    A watcher fails the job when its process dies without reporting and kills the
    process group at TRAINING_TIMEOUT_SECONDS. `close()` stops the watchers (the
    jobs keep running: a restarting server must not kill them; the reapers and
    the jobs' own heartbeats take over).
    """

    def __init__(
        self, sessions: sessionmaker[Session], settings: Settings, kind: JobKind = TRAINING
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._kind = kind
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._watchers: list[threading.Thread] = []

    def launch(self, job_id: str) -> None:
        """Start the job's own process and a watcher for it."""
        directory = job_directory(self._settings.model_dir)
        settings_file = write_settings_file(self._settings, directory, job_id)
        try:
            log_fd = os.open(
                directory / f"{job_id}.log",
                os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW,
                JOB_FILE_MODE,
            )
            with os.fdopen(log_fd, "ab") as log:
                os.fchmod(log.fileno(), JOB_FILE_MODE)
                process = subprocess.Popen(
                    [sys.executable, "-m", self._kind.module, job_id, str(settings_file)],
                    cwd=PROJECT_ROOT,
                    env=job_environment(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # Its own session: a Ctrl-C or reload of the server does not kill the
                    # job, and the whole group can be killed at a timeout or cancel.
                    start_new_session=True,
                )
        except BaseException:
            settings_file.unlink(missing_ok=True)
            raise
        with self._sessions() as session:
            self._kind.record_process(session, job_id, this_host(), process.pid)
            session.commit()
        thread = threading.Thread(
            target=self._watch,
            args=(process, job_id, settings_file),
            name=f"job-{job_id[:8]}",
            daemon=True,
        )
        with self._lock:
            self._watchers = [t for t in self._watchers if t.is_alive()]
            self._watchers.append(thread)
        thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop every watcher thread (not the jobs) and wait for them."""
        self._stop.set()
        with self._lock:
            watchers = list(self._watchers)
        for thread in watchers:
            thread.join(timeout=timeout)

    def _watch(self, process: subprocess.Popen[bytes], job_id: str, settings_file: Path) -> None:
        timeout = self._kind.timeout_seconds(self._settings)
        deadline = time.monotonic() + timeout
        code: int | None = None
        while code is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._close_job(job_id, self._kind.timed_out_message(timeout))
                _kill_group(process)
                code = process.wait()
                break
            try:
                code = process.wait(timeout=min(remaining, WATCH_INTERVAL_SECONDS))
            except subprocess.TimeoutExpired:
                if self._stop.is_set():
                    return
        settings_file.unlink(missing_ok=True)
        if code != 0 and not self._stop.is_set():
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            self._close_job(
                job_id,
                f"the {self._kind.noun} process {how} (out of memory or killed?)"
                f"{self._kind.crash_note}",
            )

    def _close_job(self, job_id: str, reason: str) -> None:
        try:
            with self._sessions() as session:
                self._kind.fail(session, job_id, reason)
        except SQLAlchemyError as exc:
            # The reapers retry from the database's side.
            logger.warning(
                "could not record a job's end",
                extra={"job_id": job_id, "error": type(exc).__name__},
            )


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
