"""Training jobs: validated plans, one open job at a time, execution, and crash detection.

A job's state lives only in the database, so any worker (or replica) can report
it, and the database's unique `open_slot` is what allows one job at a time.
Jobs run in their own process (`python -m app.services.job_runner JOB_ID
SETTINGS_FILE`), never in a web worker; `train.py` runs the same `execute_job`
in-process. A job ends by itself, by TRAINING_TIMEOUT_SECONDS (enforced by the
launcher's watcher, every worker's reaper and the job's own heartbeat) or by
`DELETE /training/{job_id}`.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.errors import BackendUnavailable, Conflict, NotFound, Unprocessable
from app.crud import model_version as model_crud
from app.crud import training_job as crud
from app.db.models import TrainingJob
from app.ml.algorithms import DEFAULT_ALGORITHM, DEFAULT_TEST_SIZE
from app.ml.dataset import Dataset, DatasetError
from app.schemas.training import TrainingRequest
from app.services.audit import AuditAction, AuditTrail
from app.services.training_plan import (
    TrainingPlan,
    assemble_dataset,
    json_value,
    resolve_data_path,
    split_params,
)

if TYPE_CHECKING:
    # Only a type here: the launcher imports this module's helpers.
    from app.services.job_launcher import JobLauncher

logger = logging.getLogger(__name__)

# An open job whose process has not reported for this long is declared dead; with
# a check every second or so on every worker, that is well inside 30 s.
STALE_AFTER_SECONDS = 20.0


@dataclass(frozen=True)
class StartedJob:
    """A launched job and the warnings about data it leaves out."""

    job: TrainingJob
    warnings: list[str]


@functools.cache
def this_host() -> str:
    """This machine's name as jobs record it (looked up on first use, not at import)."""
    return socket.gethostname()


class TrainingJobService:
    """Creates, reports, cancels and reaps jobs; bound to one session."""

    def __init__(
        self, session: Session, settings: Settings, launcher: JobLauncher | None = None
    ) -> None:
        self._session = session
        self._settings = settings
        # Starts job processes; only `start()` needs one (the CLI runs jobs in-process).
        self._launcher = launcher

    def start(self, request: TrainingRequest, *, requested_by: str) -> StartedJob:
        """Validate, record and launch a job in its own process.

        A process that cannot be started fails its job at once (so the open slot
        is free again) and is answered 503: nothing is left queued forever.
        """
        if self._launcher is None:
            raise RuntimeError("this TrainingJobService has no launcher")
        plan, _, warnings = self.plan(
            new_data_path=request.new_data_path,
            algorithm=str(request.algorithm),
            params=request.params,
            include_base_data=request.include_base_data,
            include_feedback=request.include_feedback,
            activate=request.activate,
            test_size=request.test_size,
            refit=request.refit,
        )
        job = self.create(plan, source="api", requested_by=requested_by)
        try:
            self._launcher.launch(job.job_id)
        except OSError as exc:
            mark_failed(self._session, job.job_id, f"could not start the training process: {exc}")
            raise BackendUnavailable("The training process could not be started; retry.") from None
        return StartedJob(job, warnings)

    def plan(
        self,
        *,
        new_data_path: str | None,
        algorithm: str = DEFAULT_ALGORITHM,
        params: dict[str, Any] | None = None,
        include_base_data: bool = True,
        include_feedback: bool = True,
        activate: bool = True,
        test_size: float = DEFAULT_TEST_SIZE,
        refit: bool = True,
    ) -> tuple[TrainingPlan, Dataset, list[str]]:
        """Validate a request fully (path, file, options, resulting data) before any job exists.

        Returns the plan, the data the job would train on and warnings about
        categories left out of it. The open slot is checked before any data is
        read, so requests against a running job cost no parsing.
        """
        fixed, grid = split_params(algorithm, params)
        data_file = data_path = None
        if new_data_path is not None:
            resolved, data_path = resolve_data_path(self._settings.data_dir, new_data_path)
            data_file = str(resolved)
        self.ensure_no_open_job()
        plan = TrainingPlan(
            data_file=data_file,
            data_path=data_path,
            algorithm=algorithm,
            params={k: json_value(v) for k, v in fixed.items()},
            grid={k: [json_value(v) for v in vs] for k, vs in grid.items()},
            include_base_data=include_base_data,
            include_feedback=include_feedback,
            activate=activate,
            test_size=test_size,
            refit=refit,
        )
        try:
            dataset, _ = assemble_dataset(self._session, self._settings.model_dir, plan)
            dataset, warnings = dataset.prepare_for_training(test_size)
        except DatasetError as exc:
            raise Unprocessable(str(exc)) from None
        return plan, dataset, warnings

    def ensure_no_open_job(self) -> None:
        """Conflict naming the queued or running job, if there is one."""
        open_job = crud.get_open_job(self._session)
        if open_job is not None:
            raise _busy(open_job)

    def create(self, plan: TrainingPlan, *, source: str, requested_by: str | None) -> TrainingJob:
        """Record a queued job, or Conflict naming the job that is already open."""
        open_job = crud.get_open_job(self._session)
        if open_job is None:
            try:
                job = crud.create_job(
                    self._session,
                    job_id=str(uuid.uuid4()),
                    source=source,
                    requested_by=requested_by,
                    new_model_version=model_crud.next_version(self._session),
                    data_path=plan.data_path,
                    algorithm=plan.algorithm,
                    params={**plan.params, **plan.grid},
                    options=asdict(plan),
                    created_at=datetime.now(UTC),
                )
                self._session.commit()
                return job
            except IntegrityError:
                # Another worker or process took the slot between our read and write.
                self._session.rollback()
                open_job = crud.get_open_job(self._session)
        if open_job is None:
            raise Conflict("another training job was created at the same time; retry")
        raise _busy(open_job)

    def get(self, job_id: str) -> TrainingJob:
        """One job, or NotFound."""
        job = crud.get_job(self._session, job_id)
        if job is None:
            raise NotFound(f"training job {job_id!r} does not exist")
        return job

    def recent(self, limit: int = 20) -> Sequence[TrainingJob]:
        """Recent jobs, newest first."""
        return crud.list_jobs(self._session, limit)

    def cancel(self, job_id: str, *, by: str) -> TrainingJob:
        """Fail a queued or running job as cancelled and stop its process; Conflict if finished.

        A process on this host is killed at once; one on another replica sees its
        job closed at its next heartbeat and exits. The active model is untouched.
        """
        job = self.get(job_id)
        if job.open_slot is None or not mark_failed(self._session, job_id, f"cancelled by {by}"):
            self._session.refresh(job)
            raise Conflict(
                f"training job {job_id} has already finished ({job.status}); "
                "only a queued or running job can be cancelled"
            )
        self._session.refresh(job)
        kill_job_process(job)
        return job

    def reap(self) -> list[str]:
        """Fail open jobs whose process is gone or whose time is up; returns their ids.

        On this host a dead pid is noticed at once; elsewhere (another replica's
        job) a heartbeat older than STALE_AFTER_SECONDS is. A job running for
        longer than TRAINING_TIMEOUT_SECONDS is failed wherever it runs (and its
        process killed when it runs here), even if its launcher is gone.
        """
        now = datetime.now(UTC)
        failed: list[str] = []
        open_job = crud.get_open_job(self._session)
        if open_job is None:
            return failed
        reason: str | None = None
        timeout = self._settings.training_timeout_seconds
        began = open_job.started_at or open_job.created_at
        if (
            open_job.host == this_host()
            and open_job.pid is not None
            and not pid_alive(open_job.pid)
        ):
            reason = f"the training process (pid {open_job.pid}) ended without reporting a result"
        elif began < now - timedelta(seconds=timeout):
            reason = timed_out_message(timeout)
        elif open_job in crud.stale_open_jobs(
            self._session, now - timedelta(seconds=STALE_AFTER_SECONDS)
        ):
            reason = f"the training process stopped reporting for over {STALE_AFTER_SECONDS:.0f} s"
        if reason and mark_failed(self._session, open_job.job_id, reason):
            failed.append(open_job.job_id)
            kill_job_process(open_job)
        return failed


def start_audited(
    jobs: TrainingJobService, audit: AuditTrail, body: TrainingRequest, client_id: str
) -> StartedJob:
    """`jobs.start` recorded in the audit trail as `training.start` (a 409 as a failure):
    the API's and the console's jobs alike."""
    with audit.recording(
        actor=client_id, action=AuditAction.training_start, refusals=(Conflict,)
    ) as event:
        event.detail["data_path"] = body.new_data_path
        started = jobs.start(body, requested_by=client_id)
        event.target = started.job.job_id
        event.detail.update(
            new_model_version=started.job.new_model_version, algorithm=started.job.algorithm
        )
    return started


def _busy(open_job: TrainingJob) -> Conflict:
    return Conflict(
        f"training job {open_job.job_id} is {open_job.status} "
        f"(producing {open_job.new_model_version}); one job runs at a time"
    )


def timed_out_message(timeout: float) -> str:
    """The error of a job stopped by TRAINING_TIMEOUT_SECONDS."""
    return (
        f"the job timed out: it ran for more than {timeout:g} s (TRAINING_TIMEOUT_SECONDS) "
        "and was stopped; the active model is unchanged"
    )


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_job_process(job: TrainingJob) -> bool:
    """SIGKILL the process group of a job running on this host; False if there is none."""
    return kill_process_group(job.job_id, host=job.host, pid=job.pid)


def kill_process_group(job_id: str, *, host: str | None, pid: int | None) -> bool:
    """SIGKILL the process group a job's process leads on this host; False if there is none.

    Only a process that leads its own group is killed (the launcher starts jobs
    with start_new_session), so a reused pid of some other process is left alone.
    """
    if host != this_host() or pid is None or pid == os.getpid():
        return False
    try:
        if os.getpgid(pid) != pid:
            return False
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    logger.warning("job process killed", extra={"job_id": job_id, "pid": pid})
    return True


def mark_failed(session: Session, job_id: str, reason: str) -> bool:
    """Close an open job as failed; False if it had already finished."""
    changed = crud.finish_job(
        session, job_id, datetime.now(UTC), status="failed", error=reason, stage=None
    )
    session.commit()
    if changed:
        logger.warning("training job failed", extra={"job_id": job_id, "reason": reason})
    return bool(changed)
