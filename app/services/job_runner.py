"""Entry point of a training job's own process.

    python -m app.services.job_runner JOB_ID SETTINGS_FILE

SETTINGS_FILE is the 0600 JSON file the launcher wrote (secrets included); it is
read and deleted at once, so no secret travels through the environment or argv.

`execute_job` runs a queued job to its end (also in-process, from `train.py`) while
a heartbeat thread keeps the job's row fresh and notices a cancel or a timeout.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.errors import NotFound
from app.crud import training_job as crud
from app.db.models import TrainingJob
from app.ml.dataset import DatasetError
from app.ml.parallel import FitListener, FitProgress, training_parallelism
from app.ml.training import (
    SEARCH_STAGES,
    STAGES,
    HoldoutComparison,
    Progress,
    TrainingError,
    fit_model,
    stage_percent,
)
from app.services.activation_gate import activation_blockers, compare_with_active
from app.services.job_heartbeat import Heartbeat
from app.services.job_process import run_job_process
from app.services.models import ModelRegistry
from app.services.training_jobs import mark_failed, this_host
from app.services.training_plan import TrainingPlan, assemble_dataset, split_params

logger = logging.getLogger("app.services.job_runner")


class JobClosed(Exception):
    """The job was closed by someone else (cancelled, timed out, reaped) while it ran."""


def execute_job(
    sessions: sessionmaker[Session],
    settings: Settings,
    job_id: str,
    progress: Progress | None = None,
    on_abandoned: Callable[[], None] | None = None,
    fit_progress: FitListener | None = None,
    cores: int | None = None,
) -> TrainingJob:
    """Run a queued job to its end, recording every stage; never raises for bad data.

    `on_abandoned` runs (on the heartbeat thread) when the job is cancelled or
    times out while this process still works on it. The fits run on `cores`
    (default TRAINING_CORES) or on TRAINING_CLUSTER; `fit_progress` hears of each.
    """
    with sessions() as session:
        now = datetime.now(UTC)
        started = crud.update_job(
            session,
            job_id,
            status="running",
            started_at=now,
            heartbeat_at=now,
            host=this_host(),
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

    def report_fits(fits: FitProgress) -> None:
        if fit_progress is not None:
            fit_progress(fits)
        eta_at = None
        if fits.eta_seconds is not None:
            eta_at = datetime.now(UTC) + timedelta(seconds=fits.eta_seconds)
        with sessions() as s:
            # A closed job is noticed by the next stage report or the heartbeat.
            crud.update_job(
                s, job_id, fits_done=fits.done, fits_total=fits.total, fits_eta_at=eta_at
            )
            s.commit()

    heartbeat = Heartbeat(
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
            with training_parallelism(
                cores or settings.training_cores, settings.training_cluster
            ) as where:
                logger.info("training job fits", extra={"job_id": job_id, "on": where})
                trained = fit_model(
                    dataset,
                    algorithm=plan.algorithm,
                    params=fixed,
                    grid=grid or None,
                    test_size=plan.test_size,
                    refit=plan.refit,
                    progress=report,
                    fit_progress=report_fits,
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
                    trained,
                    activate=activate,
                    version=version,
                    precision=settings.scorer_precision,
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


def main(argv: list[str]) -> int:
    return run_job_process(
        argv,
        module="app.services.job_runner",
        kind="training",
        execute=lambda sessions, settings, job_id, on_abandoned: execute_job(
            sessions, settings, job_id, on_abandoned=on_abandoned
        ),
    )


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
