"""Training jobs: validated plans, one open job at a time, execution, and crash detection.

A job's state lives only in the database, so any worker (or replica) can report
it, and the database's unique `open_slot` is what allows one job at a time.
Jobs run in their own process (`python -m app.services.job_runner JOB_ID`),
never in a web worker; `train.py` runs the same `execute_job` in-process.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
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
from app.ml.dataset import Dataset, DatasetError, merge, read_csv
from app.ml.pipeline import ALGORITHMS, DEFAULT_ALGORITHM, build_pipeline
from app.services.models import ModelRegistry
from app.services.training import (
    DEFAULT_TEST_SIZE,
    MAX_GRID_CANDIDATES,
    SEARCH_STAGES,
    STAGES,
    TrainingError,
    fit_model,
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
    """Separate fixed values from lists to search; unknown names are a 422 naming them."""
    if algorithm not in ALGORITHMS:
        choices = ", ".join(ALGORITHMS)
        raise Unprocessable(f"unknown algorithm {algorithm!r}; choose one of {choices}")
    known = build_pipeline(algorithm).get_params(deep=True)
    fixed: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}
    for name, value in (params or {}).items():
        if name not in known:
            raise Unprocessable(
                f"params: {name!r} is not a parameter of the {algorithm} pipeline "
                "(names look like 'clf__C' or 'features__word__ngram_range')"
            )
        if isinstance(value, list):
            if not value:
                raise Unprocessable(f"params: {name!r} has an empty list of candidates")
            grid[name] = [_from_json(v) for v in value]
        else:
            fixed[name] = _from_json(value)
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
        rows = feedback_crud.list_feedback(session)
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
    """Creates, reports and reaps jobs; bound to one session."""

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
    ) -> tuple[TrainingPlan, Dataset]:
        """Validate a request fully (path, file, options, resulting data) before any job exists."""
        fixed, grid = split_params(algorithm, params)
        data_file = data_path = None
        if new_data_path is not None:
            resolved, data_path = resolve_data_path(self._settings.data_dir, new_data_path)
            data_file = str(resolved)
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
            dataset.validate_for_training(test_size)
        except DatasetError as exc:
            raise Unprocessable(str(exc)) from None
        return plan, dataset

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
        raise Conflict(
            f"training job {open_job.job_id} is {open_job.status} "
            f"(producing {open_job.new_model_version}); one job runs at a time"
        )

    def get(self, job_id: str) -> TrainingJob:
        """One job, or NotFound."""
        job = crud.get_job(self._session, job_id)
        if job is None:
            raise NotFound(f"training job {job_id!r} does not exist")
        return job

    def recent(self, limit: int = 20) -> Sequence[TrainingJob]:
        """Recent jobs, newest first."""
        return crud.list_jobs(self._session, limit)

    def reap(self) -> list[str]:
        """Fail open jobs whose process is gone; returns their ids.

        On this host a dead pid is noticed at once; elsewhere (another replica's
        job) a heartbeat older than STALE_AFTER_SECONDS is.
        """
        now = datetime.now(UTC)
        failed: list[str] = []
        open_job = crud.get_open_job(self._session)
        if open_job is None:
            return failed
        reason: str | None = None
        if open_job.host == HOST and open_job.pid is not None and not _pid_alive(open_job.pid):
            reason = f"the training process (pid {open_job.pid}) ended without reporting a result"
        elif open_job in crud.stale_open_jobs(
            self._session, now - timedelta(seconds=STALE_AFTER_SECONDS)
        ):
            reason = f"the training process stopped reporting for over {STALE_AFTER_SECONDS:.0f} s"
        if reason and mark_failed(self._session, open_job.job_id, reason):
            failed.append(open_job.job_id)
        return failed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
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


class _Heartbeat:
    """Refreshes a job's heartbeat from a background thread while it runs."""

    def __init__(self, sessions: sessionmaker[Session], job_id: str) -> None:
        self._sessions = sessions
        self._job_id = job_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                with self._sessions() as session:
                    crud.update_job(session, self._job_id, heartbeat_at=datetime.now(UTC))
                    session.commit()
            except SQLAlchemyError as exc:
                # A missed beat is harmless unless the outage outlasts STALE_AFTER_SECONDS.
                logger.warning(
                    "heartbeat update failed",
                    extra={"job_id": self._job_id, "error": type(exc).__name__},
                )


def execute_job(
    sessions: sessionmaker[Session],
    settings: Settings,
    job_id: str,
    progress: Progress | None = None,
) -> TrainingJob:
    """Run a queued job to its end, recording every stage; never raises for bad data."""
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
            crud.update_job(
                s,
                job_id,
                stage=stage,
                percent=stage_percent(stage, stage_plan),
                heartbeat_at=datetime.now(UTC),
            )
            s.commit()

    with _Heartbeat(sessions, job_id):
        try:
            report("load")
            with sessions() as session:
                dataset, base_version = assemble_dataset(session, settings.model_dir, plan)
                crud.update_job(session, job_id, base_version=base_version, data_rows=len(dataset))
                session.commit()
            trained = fit_model(
                dataset,
                algorithm=plan.algorithm,
                params={k: _from_json(v) for k, v in plan.params.items()},
                grid={k: [_from_json(v) for v in vs] for k, vs in plan.grid.items()} or None,
                test_size=plan.test_size,
                progress=report,
            )
            report("save")
            macro_f1 = float(trained.metrics["macro_f1"])
            passes = macro_f1 >= settings.min_macro_f1
            with sessions() as session:
                saved = ModelRegistry(session, settings.model_dir).save(
                    trained, activate=plan.activate and passes, version=job.new_model_version
                )
                if not passes:
                    message = (
                        f"macro-F1 {macro_f1:.4f} is below MIN_MACRO_F1 "
                        f"{settings.min_macro_f1:.4f}: {saved.version} is kept but not activated"
                    )
                elif saved.is_active:
                    message = f"{saved.version} is trained and active"
                else:
                    message = f"{saved.version} is trained (not activated, as requested)"
                crud.finish_job(
                    session,
                    job_id,
                    datetime.now(UTC),
                    status="succeeded",
                    stage=None,
                    percent=100.0,
                    metrics=trained.metrics,
                    best_params=trained.best_params,
                    cv_results=trained.cv_results,
                    produced_version=saved.version,
                    activated=saved.is_active,
                    message=message,
                )
                session.commit()
        except (DatasetError, TrainingError) as exc:
            with sessions() as session:
                mark_failed(session, job_id, str(exc))
        except Exception as exc:
            logger.exception("training job crashed", extra={"job_id": job_id})
            with sessions() as session:
                mark_failed(session, job_id, f"{type(exc).__name__}: {exc}")
    with sessions() as session:
        final = crud.get_job(session, job_id)
    assert final is not None
    return final


SETTINGS_VARIABLE = "GAROUPA_JOB_SETTINGS"


def settings_environment(settings: Settings) -> dict[str, str]:
    """The child's environment: ours plus the exact settings, which win over `.env`."""
    env = dict(os.environ)
    env[SETTINGS_VARIABLE] = settings.model_dump_json()
    # One BLAS thread: the job must leave the other cores to the web workers.
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def settings_from_environment() -> Settings:
    """The settings a launching process passed down (see `settings_environment`)."""
    values = json.loads(os.environ[SETTINGS_VARIABLE])
    return Settings(_env_file=None, **values)


def launch_job(sessions: sessionmaker[Session], settings: Settings, job_id: str) -> None:
    """Start the job's own process and watch it; a death before it reports marks it failed."""
    log_dir = settings.model_dir / "jobs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / f"{job_id}.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.services.job_runner", job_id],
            cwd=PROJECT_ROOT,
            env=settings_environment(settings),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C or reload of the server does not kill the job.
            start_new_session=True,
        )
    with sessions() as session:
        crud.update_job(session, job_id, host=HOST, pid=process.pid)
        session.commit()

    def watch() -> None:
        code = process.wait()
        if code != 0:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            with sessions() as session:
                mark_failed(
                    session,
                    job_id,
                    f"the training process {how} (out of memory or killed?); "
                    "the active model is unchanged",
                )

    threading.Thread(target=watch, name=f"job-{job_id[:8]}", daemon=True).start()
