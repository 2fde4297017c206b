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

import json
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import PROJECT_ROOT, Settings
from app.core.errors import BadRequest, Conflict, NotFound, Unprocessable
from app.crud import feedback as feedback_crud
from app.crud import model_version as model_crud
from app.crud import training_job as crud
from app.db.models import TrainingJob
from app.ml.artifacts import ArtifactError, load_artifact
from app.ml.dataset import Dataset, DatasetError, merge, read_csv
from app.ml.pipeline import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    TUNABLE_PARAMS,
    ParamError,
    check_param,
)
from app.services.models import ModelRegistry
from app.services.training import (
    DEFAULT_TEST_SIZE,
    MAX_GRID_CANDIDATES,
    SEARCH_STAGES,
    STAGES,
    HoldoutComparison,
    TrainedModel,
    TrainingError,
    compare_on_holdout,
    fit_model,
    fitted_texts,
    stage_percent,
)

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
# An open job whose process has not reported for this long is declared dead; with
# a check every second or so on every worker, that is well inside 30 s.
STALE_AFTER_SECONDS = 20.0
HOST = socket.gethostname()

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainingPlan:
    """Everything a job will do, validated before the job exists."""

    data_file: str | None
    data_path: str | None
    algorithm: str
    params: dict[str, Any]
    grid: dict[str, list[Any]]
    include_base_data: bool
    include_feedback: bool
    activate: bool
    test_size: float = DEFAULT_TEST_SIZE

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> TrainingPlan:
        """Rebuild a plan from a job's stored options."""
        return cls(**options)


def resolve_data_path(data_dir: Path, raw: str) -> tuple[Path, str]:
    """Confine a client-supplied path to `data_dir`: (absolute file, path shown back).

    Absolute paths, `..`, backslashes and symlinks that lead out are refused (400);
    a leading `data/` is accepted as the original README writes it.
    """
    text = raw.strip()
    if not text or "\x00" in text or "\\" in text:
        raise BadRequest("new_data_path must be a relative path inside the data directory")
    path = PurePosixPath(text)
    if not path.parts or path.is_absolute() or ".." in path.parts:
        raise BadRequest(
            f"new_data_path must be relative to the data directory, without '..' (got {raw!r})"
        )
    root = data_dir.resolve()
    if path.parts[0] == "data" and len(path.parts) > 1 and not (root / path).exists():
        path = PurePosixPath(*path.parts[1:])
    resolved = (root / path).resolve()
    if not resolved.is_relative_to(root):
        raise BadRequest(f"new_data_path {raw!r} leads outside the data directory")
    if not resolved.exists():
        raise NotFound(f"data file {str(path)!r} does not exist in the data directory")
    if not resolved.is_file():
        raise BadRequest(f"data path {str(path)!r} is not a file")
    return resolved, str(path)


Grid = dict[str, list[Any]]


def split_params(algorithm: str, params: dict[str, Any] | None) -> tuple[dict[str, Any], Grid]:
    """Separate fixed values from lists to search, each checked against the allow-list.

    Only the names in `TUNABLE_PARAMS[algorithm]` pass, each value (and every grid
    candidate) of its type and inside its range; anything else is a 422 naming the
    parameter and the allowed names. An n-gram range is itself a list of two ints,
    so for those a list of lists is the grid.
    """
    if algorithm not in ALGORITHMS:
        choices = ", ".join(ALGORITHMS)
        raise Unprocessable(f"unknown algorithm {algorithm!r}; choose one of {choices}")
    allowed = TUNABLE_PARAMS[algorithm]
    fixed: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}
    try:
        for name, value in (params or {}).items():
            spec = allowed.get(name)
            if spec is not None and spec.kind == "ngram":
                is_grid = isinstance(value, list) and all(isinstance(v, list) for v in value)
            else:
                is_grid = isinstance(value, list)
            if not is_grid:
                fixed[name] = check_param(algorithm, name, value)
                continue
            if not value:
                raise ParamError(f"{name!r} has an empty list of candidates")
            grid[name] = [check_param(algorithm, name, v) for v in value]
    except ParamError as exc:
        raise Unprocessable(f"params: {exc}") from None
    candidates = 1
    for values in grid.values():
        candidates *= len(values)
    if candidates > MAX_GRID_CANDIDATES:
        raise Unprocessable(
            f"params: the grid has {candidates} combinations; at most {MAX_GRID_CANDIDATES} allowed"
        )
    return fixed, grid


def _from_json(value: Any) -> Any:
    # JSON has no tuples; scikit-learn wants them for ranges such as ngram_range.
    return tuple(value) if isinstance(value, list) else value


def _to_json(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def assemble_dataset(
    session: Session, model_dir: Path, plan: TrainingPlan
) -> tuple[Dataset, str | None]:
    """The rows a plan trains on (base, then new file, then feedback) and the base version."""
    parts: list[Dataset] = []
    base_version: str | None = None
    if plan.include_base_data:
        active = model_crud.get_active(session)
        if active is not None:
            parts.append(ModelRegistry(session, model_dir).training_data(active))
            base_version = active.version
    if plan.data_file is not None:
        parts.append(read_csv(Path(plan.data_file), source=plan.data_path or plan.data_file))
    if plan.include_feedback:
        rows = feedback_crud.list_training_feedback(session)
        if rows:
            parts.append(
                Dataset(
                    texts=[r.product_name for r in rows],
                    labels=[r.category for r in rows],
                    sources=[{"source": "feedback", "rows": len(rows), "used": len(rows)}],
                )
            )
    if not parts:
        raise DatasetError("there is nothing to train on: no data file, base data or feedback")
    return merge(*parts), base_version


class TrainingJobService:
    """Creates, reports, cancels and reaps jobs; bound to one session."""

    def __init__(self, session: Session, settings: Settings) -> None:
        self._session = session
        self._settings = settings

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
            params={k: _to_json(v) for k, v in fixed.items()},
            grid={k: [_to_json(v) for v in vs] for k, vs in grid.items()},
            include_base_data=include_base_data,
            include_feedback=include_feedback,
            activate=activate,
            test_size=test_size,
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
        if open_job.host == HOST and open_job.pid is not None and not _pid_alive(open_job.pid):
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_job_process(job: TrainingJob) -> bool:
    """SIGKILL the process group of a job running on this host; False if there is none.

    Only a process that leads its own group is killed (the launcher starts jobs
    with start_new_session), so a reused pid of some other process is left alone.
    """
    if job.host != HOST or job.pid is None or job.pid == os.getpid():
        return False
    try:
        if os.getpgid(job.pid) != job.pid:
            return False
        os.killpg(job.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    logger.warning("training process killed", extra={"job_id": job.job_id, "pid": job.pid})
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


class JobClosed(Exception):
    """The job was closed by someone else (cancelled, timed out, reaped) while it ran."""


class _Heartbeat:
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
    ) -> None:
        self._sessions = sessions
        self._job_id = job_id
        self._deadline = time.monotonic() + timeout
        self._timeout = timeout
        self._on_abandoned = on_abandoned
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
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
                        mark_failed(session, self._job_id, timed_out_message(self._timeout))
                        still_open = False
                    else:
                        still_open = bool(
                            crud.update_job(session, self._job_id, heartbeat_at=datetime.now(UTC))
                        )
                        session.commit()
            except SQLAlchemyError as exc:
                # A missed beat is harmless unless the outage outlasts STALE_AFTER_SECONDS.
                logger.warning(
                    "heartbeat update failed",
                    extra={"job_id": self._job_id, "error": type(exc).__name__},
                )
                continue
            if not still_open and not self._stop.is_set():
                logger.warning("training job closed while running", extra={"job_id": self._job_id})
                if self._on_abandoned is not None:
                    self._on_abandoned()
                return

    def _remaining(self) -> float:
        return self._deadline - time.monotonic()


def activation_blockers(
    settings: Settings, comparison: HoldoutComparison | None, new_f1: float
) -> list[str]:
    """Why the new version must not be activated automatically (empty: it may be)."""
    reasons = []
    if new_f1 < settings.min_macro_f1:
        reasons.append(f"macro-F1 {new_f1:.4f} is below MIN_MACRO_F1 {settings.min_macro_f1:.4f}")
    if comparison is not None and comparison.new_macro_f1 < (
        comparison.active_macro_f1 - settings.max_f1_drop
    ):
        reasons.append(
            f"macro-F1 {comparison.new_macro_f1:.4f} is more than MAX_F1_DROP "
            f"{settings.max_f1_drop:.4f} below the active {comparison.active_version}'s "
            f"{comparison.active_macro_f1:.4f} on the same hold-out ({comparison.rows} rows)"
        )
    return reasons


def compare_with_active(
    session: Session, model_dir: Path, trained: TrainedModel
) -> HoldoutComparison | None:
    """Score the active version on the new model's hold-out; None when nothing is active.

    Rows the active version was fitted on are left out of the comparison (it
    would score them from memory); both models are scored on the rest.
    """
    registry = ModelRegistry(session, model_dir)
    active = registry.active()
    if active is None:
        return None
    try:
        pipeline = load_artifact(
            registry.artifact_path(active), active.sha256, active.library_versions
        )
        seen = fitted_texts(
            registry.training_data(active),
            float(active.metrics.get("test_size", DEFAULT_TEST_SIZE)),
        )
    except (ArtifactError, DatasetError, ValueError) as exc:
        raise TrainingError(
            f"the active version {active.version} could not be scored on the new hold-out "
            f"({exc}); activate the new version by hand if it is better"
        ) from None
    return compare_on_holdout(trained, pipeline, active.version, seen)


def execute_job(
    sessions: sessionmaker[Session],
    settings: Settings,
    job_id: str,
    progress: Progress | None = None,
    on_abandoned: Callable[[], None] | None = None,
) -> TrainingJob:
    """Run a queued job to its end, recording every stage; never raises for bad data.

    `on_abandoned` runs (on the heartbeat thread) when the job is cancelled or
    times out while this process still works on it.
    """
    with sessions() as session:
        now = datetime.now(UTC)
        started = crud.update_job(
            session,
            job_id,
            status="running",
            started_at=now,
            heartbeat_at=now,
            host=HOST,
            pid=os.getpid(),
        )
        session.commit()
        job = crud.get_job(session, job_id)
    if job is None or not started:
        raise NotFound(f"training job {job_id!r} is not open")
    plan = TrainingPlan.from_options(job.options)
    stage_plan = SEARCH_STAGES if plan.grid else STAGES

    def report(stage: str) -> None:
        if progress is not None:
            progress(stage)
        with sessions() as s:
            still_open = crud.update_job(
                s,
                job_id,
                stage=stage,
                percent=stage_percent(stage, stage_plan),
                heartbeat_at=datetime.now(UTC),
            )
            s.commit()
        if not still_open:
            raise JobClosed(job_id)

    heartbeat = _Heartbeat(
        sessions, job_id, timeout=settings.training_timeout_seconds, on_abandoned=on_abandoned
    )
    with heartbeat:
        try:
            report("load")
            # The stored options came from a validated request; checked again so a
            # row edited in the database cannot smuggle in another parameter.
            fixed, grid = split_params(plan.algorithm, {**plan.params, **plan.grid})
            with sessions() as session:
                dataset, base_version = assemble_dataset(session, settings.model_dir, plan)
                dataset, warnings = dataset.prepare_for_training(plan.test_size)
                crud.update_job(
                    session,
                    job_id,
                    base_version=base_version,
                    data_rows=len(dataset),
                    metrics={"warnings": warnings} if warnings else None,
                )
                session.commit()
            trained = fit_model(
                dataset,
                algorithm=plan.algorithm,
                params=fixed,
                grid=grid or None,
                test_size=plan.test_size,
                progress=report,
            )
            report("save")
            comparison: HoldoutComparison | None = None
            blocked: list[str] = []
            try:
                with sessions() as session:
                    comparison = compare_with_active(session, settings.model_dir, trained)
            except TrainingError as exc:
                blocked.append(str(exc))
            if comparison is not None:
                trained.metrics.update(comparison.as_metrics())
            if warnings:
                trained.metrics["warnings"] = warnings
            blocked = [
                *activation_blockers(settings, comparison, float(trained.metrics["macro_f1"])),
                *blocked,
            ]
            activate = plan.activate and not blocked
            # From here on the job finishes itself; a closed job is caught by finish_job.
            heartbeat.stop()
            with sessions() as session:
                version = job.new_model_version
                if blocked:
                    message = f"{'; '.join(blocked)}: {version} is kept but not activated"
                elif activate:
                    message = f"{version} is trained and active"
                else:
                    message = f"{version} is trained (not activated, as requested)"
                # Closing the job and recording the version commit together, so a
                # job cancelled or timed out at this moment activates nothing.
                closed = crud.finish_job(
                    session,
                    job_id,
                    datetime.now(UTC),
                    status="succeeded",
                    stage=None,
                    percent=100.0,
                    metrics=trained.metrics,
                    best_params=trained.best_params,
                    cv_results=trained.cv_results,
                    produced_version=version,
                    activated=activate,
                    message=message,
                )
                if not closed:
                    session.rollback()
                    raise JobClosed(job_id)
                ModelRegistry(session, settings.model_dir).save(
                    trained, activate=activate, version=version
                )
        except JobClosed:
            logger.warning("training job closed while running", extra={"job_id": job_id})
        except (DatasetError, TrainingError) as exc:
            # Stopped first, so the heartbeat does not take our own close for a cancel.
            heartbeat.stop()
            with sessions() as session:
                mark_failed(session, job_id, str(exc))
        except Exception as exc:
            logger.exception("training job crashed", extra={"job_id": job_id})
            heartbeat.stop()
            with sessions() as session:
                mark_failed(session, job_id, f"{type(exc).__name__}: {exc}")
    with sessions() as session:
        final = crud.get_job(session, job_id)
    assert final is not None
    return final


# Job logs and settings files hold data and secrets: the service's user only.
JOB_DIR_MODE = 0o700
JOB_FILE_MODE = 0o600
# How often a watcher wakes to check its deadline and whether it should stop.
WATCH_INTERVAL_SECONDS = 0.5


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


def job_environment() -> dict[str, str]:
    """The child's environment: ours without any setting (the settings file carries them)."""
    setting_names = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in setting_names}
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

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings
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
                    [sys.executable, "-m", "app.services.job_runner", job_id, str(settings_file)],
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
            crud.update_job(session, job_id, host=HOST, pid=process.pid)
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
        timeout = self._settings.training_timeout_seconds
        deadline = time.monotonic() + timeout
        code: int | None = None
        while code is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._close_job(job_id, timed_out_message(timeout))
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
                f"the training process {how} (out of memory or killed?); "
                "the active model is unchanged",
            )

    def _close_job(self, job_id: str, reason: str) -> None:
        try:
            with self._sessions() as session:
                mark_failed(session, job_id, reason)
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
