"""Bulk scoring jobs: admitted within limits, run in their own process, owned by one client.

    python -m app.services.bulk_jobs JOB_ID SETTINGS_FILE

A job is a row of `bulk_jobs` plus a folder MODEL_DIR/bulk/JOB_ID (0700) holding
the uploaded input (if any) and, once complete, `result.csv` (0600). The process
is started, watched, timed out and reaped as a training job's is
(app/services/job_launcher.py with the BULK kind); the scoring itself is
`BulkScorer` (app/services/bulk_scoring.py), so a row's answer is the one
`/predict/batch` gives. Only the client that created a job sees it: to anyone
else it does not exist. Every finished job and its files are deleted
BULK_RESULT_RETENTION_DAYS after it ended.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.errors import (
    BackendUnavailable,
    Conflict,
    GaroupaError,
    ModelNotReady,
    NotFound,
    QuotaExceeded,
    Unprocessable,
)
from app.core.metrics import setup_metrics
from app.crud import bulk_job as crud
from app.db.models import BulkJob
from app.ml.artifacts import ArtifactError
from app.services.bulk_scoring import BulkLimits, BulkProgress, BulkScorer, load_serving_model
from app.services.datasets import UPLOAD_FOLDER, client_folder
from app.services.job_heartbeat import Heartbeat
from app.services.job_launcher import JOB_DIR_MODE, JOB_FILE_MODE, JobKind, JobLauncher
from app.services.job_process import run_job_process
from app.services.models import ModelRegistry
from app.services.prediction import Predictions, PredictionService, review_threshold
from app.services.training_jobs import (
    STALE_AFTER_SECONDS,
    kill_process_group,
    pid_alive,
    this_host,
)
from app.services.training_plan import resolve_data_path

logger = logging.getLogger(__name__)

BULK_FOLDER = "bulk"
INPUT_NAME = "input.csv"
RESULT_NAME = "result.csv"
# A running job writes its progress (which is also its heartbeat) at most this often.
PROGRESS_SECONDS = 1.0
# One maintenance pass deletes at most this many jobs; the next pass continues.
MAX_DELETIONS_PER_PASS = 1000
_COPY_CHUNK_BYTES = 1024 * 1024
# Failed jobs whose leftover files (input, partial output) each pass looks for.
RECENT_FAILURES = timedelta(hours=1)

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def bulk_root(model_dir: Path) -> Path:
    """MODEL_DIR/bulk, readable by the service's user only (inputs and results)."""
    path = model_dir / BULK_FOLDER
    path.mkdir(mode=JOB_DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, JOB_DIR_MODE)
    return path


def job_folder(model_dir: Path, job_id: str) -> Path:
    """Where one job's files live (the id is one this service generated, never a client's)."""
    return model_dir / BULK_FOLDER / job_id


def result_file(model_dir: Path, job_id: str) -> Path:
    """The complete result of a succeeded job (absent until then)."""
    return job_folder(model_dir, job_id) / RESULT_NAME


def timed_out_message(timeout: float) -> str:
    """The error of a job stopped by BULK_TIMEOUT_SECONDS."""
    return (
        f"the job timed out: it ran for more than {timeout:g} s (BULK_TIMEOUT_SECONDS) "
        "and was stopped"
    )


def mark_failed(session: Session, job_id: str, reason: str) -> bool:
    """Close an open job as failed; False if it had already finished.

    Its folder is deleted by the next maintenance pass: a failed job never has a
    result to serve, partial or not.
    """
    now = _now()
    changed = crud.finish_job(
        session, job_id, status="failed", error=reason, finished_at=now, eta_seconds=None
    )
    session.commit()
    if changed:
        logger.warning("bulk job failed", extra={"job_id": job_id, "reason": reason})
    return bool(changed)


def _record_process(session: Session, job_id: str, host: str, pid: int) -> int:
    return crud.update_job(session, job_id, host=host, pid=pid)


def _touch(session: Session, job_id: str, now: datetime) -> int:
    return crud.update_job(session, job_id, heartbeat_at=now)


def _timeout(settings: Settings) -> float:
    return settings.bulk_timeout_seconds


BULK = JobKind(
    noun="bulk scoring",
    module="app.services.bulk_jobs",
    record_process=_record_process,
    fail=mark_failed,
    timeout_seconds=_timeout,
    timed_out_message=timed_out_message,
)


class BulkJobService:
    """Admits, reports, cancels, reaps and expires bulk jobs; bound to one session."""

    def __init__(
        self,
        session: Session,
        settings: Settings,
        launcher: JobLauncher | None = None,
        clock: Clock = _now,
    ) -> None:
        self._session = session
        self._settings = settings
        # Starts job processes; only the submit methods need one.
        self._launcher = launcher
        self._clock = clock

    def submit(
        self,
        client_id: str,
        *,
        upload: BinaryIO | None,
        data_path: str | None,
        version: str | None,
    ) -> BulkJob:
        """Start a job on an uploaded CSV or on `data_path`: exactly one of them (422)."""
        if (upload is None) == (data_path is None):
            raise Unprocessable("send either a CSV `file` or a `data_path`, not both or neither")
        if upload is not None:
            return self.submit_upload(client_id, upload, version)
        assert data_path is not None
        return self.submit_data_path(client_id, data_path, version)

    def submit_upload(self, client_id: str, upload: BinaryIO, version: str | None) -> BulkJob:
        """Store an uploaded CSV for a new job and start it; QuotaExceeded past the byte limit.

        The upload is copied to the bulk folder before the job is admitted, so a
        job is never queued without its input (a reaper would take a long copy
        for a dead job); the copy is deleted when admission is refused.
        """
        model_version = self._resolve_version(version)
        root = bulk_root(self._settings.model_dir)
        staged = root / f".upload-{uuid.uuid4().hex}.tmp"
        try:
            self._copy_bounded(upload, staged)
            job = self._admit(
                client_id, model_version, source="upload", data_path=None, input_file=None
            )
            folder = job_folder(self._settings.model_dir, job.job_id)
            folder.mkdir(mode=JOB_DIR_MODE)
            os.replace(staged, folder / INPUT_NAME)
        finally:
            staged.unlink(missing_ok=True)
        self._launch(job)
        return job

    def submit_data_path(self, client_id: str, data_path: str, version: str | None) -> BulkJob:
        """Start a job on a CSV inside the data directory.

        The path is confined to the data directory as for training, and the upload
        folders of other clients do not exist for this one.
        """
        resolved, shown = resolve_data_path(self._settings.data_dir, data_path)
        parts = resolved.relative_to(self._settings.data_dir.resolve()).parts
        if parts[0] == UPLOAD_FOLDER and parts[1:2] != (client_folder(client_id),):
            raise NotFound(f"data file {shown!r} does not exist in the data directory")
        model_version = self._resolve_version(version)
        job = self._admit(
            client_id,
            model_version,
            source="data_path",
            data_path=shown,
            input_file=str(resolved),
        )
        (bulk_root(self._settings.model_dir) / job.job_id).mkdir(mode=JOB_DIR_MODE)
        self._launch(job)
        return job

    def get(self, client_id: str, job_id: str) -> BulkJob:
        """One of this client's jobs, or NotFound (another client's job is not found either)."""
        job = crud.get_job(self._session, job_id)
        if job is None or job.client_id != client_id:
            raise NotFound(f"bulk job {job_id[:64]!r} does not exist")
        return job

    def result(self, client_id: str, job_id: str) -> Path:
        """The complete result file of a succeeded job; Conflict while it is not one."""
        job = self.get(client_id, job_id)
        if job.status != "succeeded":
            raise Conflict(
                f"bulk job {job.job_id} is {job.status}: only a succeeded job has a result"
            )
        path = result_file(self._settings.model_dir, job.job_id)
        if not path.is_file():
            raise NotFound(f"the result of bulk job {job.job_id} has been deleted")
        return path

    def cancel(self, client_id: str, job_id: str) -> BulkJob:
        """Fail a queued or running job as cancelled and stop its process; Conflict if finished."""
        job = self.get(client_id, job_id)
        if not mark_failed(self._session, job.job_id, f"cancelled by {client_id}"):
            self._session.refresh(job)
            raise Conflict(
                f"bulk job {job.job_id} has already finished ({job.status}); "
                "only a queued or running job can be cancelled"
            )
        self._session.refresh(job)
        kill_process_group(job.job_id, host=job.host, pid=job.pid)
        return job

    def reap(self) -> list[str]:
        """Fail open jobs whose process is gone, silent or out of time; returns their ids."""
        now = self._clock()
        timeout = self._settings.bulk_timeout_seconds
        stale_before = now - timedelta(seconds=STALE_AFTER_SECONDS)
        failed: list[str] = []
        for job in crud.open_jobs(self._session):
            reason: str | None = None
            if job.host == this_host() and job.pid is not None and not pid_alive(job.pid):
                reason = f"the bulk scoring process (pid {job.pid}) ended without a result"
            elif (job.started_at or job.created_at) < now - timedelta(seconds=timeout):
                reason = timed_out_message(timeout)
            elif (job.heartbeat_at or job.created_at) < stale_before:
                reason = (
                    f"the bulk scoring process stopped reporting for over "
                    f"{STALE_AFTER_SECONDS:.0f} s"
                )
            if reason and mark_failed(self._session, job.job_id, reason):
                failed.append(job.job_id)
                kill_process_group(job.job_id, host=job.host, pid=job.pid)
        return failed

    def purge_expired(self) -> list[str]:
        """Delete jobs (rows and files) that ended over BULK_RESULT_RETENTION_DAYS ago, and
        the leftover files of failed jobs; bounded per pass. Returns the deleted job ids."""
        now = self._clock()
        cutoff = now - timedelta(days=self._settings.bulk_result_retention_days)
        expired = crud.jobs_finished_before(self._session, cutoff, MAX_DELETIONS_PER_PASS)
        for job in expired:
            self._delete_folder(job.job_id)
        ids = [job.job_id for job in expired]
        if ids:
            crud.delete_jobs(self._session, ids)
        self._session.commit()
        # Every worker runs this pass about once a minute: a failed job's folder goes at
        # the first pass after it failed, so only the recent ones need looking at.
        for job in crud.failed_jobs_since(self._session, now - RECENT_FAILURES):
            self._delete_folder(job.job_id)
        if ids:
            logger.info("expired bulk jobs deleted", extra={"count": len(ids)})
        return ids

    def _delete_folder(self, job_id: str) -> None:
        folder = job_folder(self._settings.model_dir, job_id)
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)

    def _resolve_version(self, version: str | None) -> str:
        # ModelVersionNotFound (404) for an unknown version, ModelNotReady when none is active.
        registry = ModelRegistry(self._session, self._settings.model_dir)
        row = registry.active() if version is None else registry.get(version)
        if row is None:
            raise ModelNotReady()
        return row.version

    def _copy_bounded(self, upload: BinaryIO, staged: Path) -> None:
        limit = self._settings.max_bulk_upload_bytes
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, JOB_FILE_MODE)
        written = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := upload.read(_COPY_CHUNK_BYTES):
                written += len(chunk)
                if written > limit:
                    raise QuotaExceeded(
                        f"the upload is larger than MAX_BULK_UPLOAD_BYTES ({limit} bytes)"
                    )
                out.write(chunk)

    def _admit(
        self,
        client_id: str,
        model_version: str,
        *,
        source: str,
        data_path: str | None,
        input_file: str | None,
    ) -> BulkJob:
        """Record a queued job, or Conflict when the client or the service is at its limit."""
        # Ends the read transaction of the version lookup: on SQLite the INSERT below
        # must start a fresh one to see every admission committed before it.
        self._session.commit()
        job_id = str(uuid.uuid4())
        if input_file is None:
            input_file = str(job_folder(self._settings.model_dir, job_id) / INPUT_NAME)
        crud.lock_admissions(self._session)
        try:
            job = crud.create_job(
                self._session,
                job_id=job_id,
                client_id=client_id,
                model_version=model_version,
                source=source,
                data_path=data_path,
                input_file=input_file,
                created_at=self._clock(),
            )
        except IntegrityError:
            self._session.rollback()
            raise Conflict("another bulk job was created at the same time; retry") from None
        per_client = self._settings.max_bulk_jobs_per_client
        overall = self._settings.max_bulk_jobs
        if crud.count_open(self._session, client_id) > per_client:
            self._session.rollback()
            raise Conflict(
                f"this client already has {per_client} bulk jobs queued or running "
                "(MAX_BULK_JOBS_PER_CLIENT); wait for one to finish or cancel one"
            )
        if crud.count_open(self._session) > overall:
            self._session.rollback()
            raise Conflict(
                f"the service is running its limit of {overall} bulk jobs (MAX_BULK_JOBS); "
                "retry later"
            )
        self._session.commit()
        logger.info(
            "bulk job queued",
            extra={"job_id": job_id, "client_id": client_id, "version": model_version},
        )
        return job

    def _launch(self, job: BulkJob) -> None:
        if self._launcher is None:
            raise RuntimeError("this BulkJobService has no launcher")
        try:
            self._launcher.launch(job.job_id)
        except OSError as exc:
            mark_failed(self._session, job.job_id, f"could not start the process: {exc}")
            raise BackendUnavailable(
                "The bulk scoring process could not be started; retry."
            ) from None
        self._session.refresh(job)


class _JobClosed(Exception):
    """The job was closed by someone else (cancelled, timed out, reaped) while it ran."""


class _ProgressWriter:
    """Writes a running job's progress to its row at most every PROGRESS_SECONDS.

    A write that finds the job closed raises _JobClosed, which stops the scorer
    (its partial output is removed).
    """

    def __init__(self, sessions: sessionmaker[Session], job_id: str) -> None:
        self._sessions = sessions
        self._job_id = job_id
        self._last = float("-inf")

    def __call__(self, progress: BulkProgress) -> None:
        if time.monotonic() - self._last < PROGRESS_SECONDS:
            return
        self._last = time.monotonic()
        with self._sessions() as session:
            still_open = crud.update_job(
                session,
                self._job_id,
                rows=progress.rows,
                bad_rows=progress.bad_rows,
                bytes_read=progress.bytes_read,
                total_bytes=progress.total_bytes,
                rows_per_second=round(progress.rows_per_second, 1),
                eta_seconds=progress.eta_seconds,
                heartbeat_at=_now(),
            )
            session.commit()
        if not still_open:
            raise _JobClosed(self._job_id)


def execute_bulk_job(
    sessions: sessionmaker[Session],
    settings: Settings,
    job_id: str,
    on_abandoned: Callable[[], None] | None = None,
) -> BulkJob:
    """Run a queued job to its end; bad rows and bad files fail the row or the job, never this.

    `on_abandoned` runs (on the heartbeat thread) when the job is cancelled or
    times out while this process still works on it.
    """
    now = _now()
    with sessions() as session:
        started = crud.start_job(
            session, job_id, started_at=now, heartbeat_at=now, host=this_host(), pid=os.getpid()
        )
        session.commit()
        job = crud.get_job(session, job_id)
    if job is None or not started:
        raise NotFound(f"bulk job {job_id!r} is not queued")
    destination = result_file(settings.model_dir, job_id)
    heartbeat = Heartbeat(
        sessions,
        job_id,
        timeout=settings.bulk_timeout_seconds,
        on_abandoned=on_abandoned,
        touch=_touch,
        fail=mark_failed,
        timed_out=timed_out_message,
    )
    with heartbeat:
        try:
            with sessions() as session:
                registry = ModelRegistry(session, settings.model_dir)
                predictions = PredictionService(sessions, settings.model_dir, setup_metrics())
                model = load_serving_model(predictions, registry, job.model_version)
            threshold = review_threshold(
                None, settings, Predictions(model.version, [], model.review_threshold)
            )
            # The workers are forked from this process, so they share its process group:
            # a cancel or timeout that kills the group kills them too, and they exit on
            # their own when this process leaves (abandon() calls os._exit).
            scorer = BulkScorer(
                model,
                threshold,
                BulkLimits(max_rows=settings.max_bulk_rows),
                cores=settings.bulk_cores,
            )
            summary = scorer.score_file(
                Path(job.input_file),
                destination,
                _ProgressWriter(sessions, job_id),
                mode=JOB_FILE_MODE,
            )
            # From here on the job finishes itself; a closed job is caught by finish_job.
            heartbeat.stop()
            finished = _now()
            with sessions() as session:
                closed = crud.finish_job(
                    session,
                    job_id,
                    status="succeeded",
                    finished_at=finished,
                    expires_at=finished + timedelta(days=settings.bulk_result_retention_days),
                    rows=summary.rows,
                    bad_rows=summary.bad_rows,
                    bytes_read=os.path.getsize(job.input_file),
                    rows_per_second=round(summary.rows_per_second, 1),
                    eta_seconds=0.0,
                )
                session.commit()
            if not closed:
                destination.unlink(missing_ok=True)
                raise _JobClosed(job_id)
        except _JobClosed:
            logger.warning("bulk job closed while running", extra={"job_id": job_id})
        except (GaroupaError, ArtifactError) as exc:
            # Too many rows, an unknown or altered version: the message is the client's to read.
            heartbeat.stop()
            with sessions() as session:
                reason = exc.message if isinstance(exc, GaroupaError) else str(exc)
                mark_failed(session, job_id, reason)
        except OSError as exc:
            heartbeat.stop()
            # Without the file name: for a data_path job it is a path on the server.
            with sessions() as session:
                mark_failed(
                    session, job_id, f"could not read the input or write the result: {exc.strerror}"
                )
        except Exception as exc:
            # As in the training runner: a bug must fail the job, not leave it open.
            logger.exception("bulk job crashed", extra={"job_id": job_id})
            heartbeat.stop()
            with sessions() as session:
                mark_failed(session, job_id, f"{type(exc).__name__}: {exc}")
        finally:
            if job.source == "upload":
                Path(job.input_file).unlink(missing_ok=True)
    with sessions() as session:
        final = crud.get_job(session, job_id)
    assert final is not None
    return final


def main(argv: list[str]) -> int:
    return run_job_process(
        argv,
        module="app.services.bulk_jobs",
        kind="bulk",
        execute=lambda sessions, settings, job_id, on_abandoned: execute_bulk_job(
            sessions, settings, job_id, on_abandoned=on_abandoned
        ),
    )


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
