"""SQL for training jobs. The calling service owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.db.models import TrainingJob


def get_job(session: Session, job_id: str) -> TrainingJob | None:
    """The job with this id, or None."""
    return session.scalars(select(TrainingJob).where(TrainingJob.job_id == job_id)).one_or_none()


def get_open_job(session: Session) -> TrainingJob | None:
    """The queued or running job, if any (there is at most one)."""
    return session.scalars(
        select(TrainingJob).where(TrainingJob.open_slot.is_not(None))
    ).one_or_none()


def list_jobs(session: Session, limit: int) -> Sequence[TrainingJob]:
    """The most recent jobs, newest first."""
    return session.scalars(select(TrainingJob).order_by(TrainingJob.id.desc()).limit(limit)).all()


def create_job(session: Session, **values: Any) -> TrainingJob:
    """Stage a queued job holding the open slot (the flush raises if the slot is taken)."""
    job = TrainingJob(open_slot=1, status="queued", percent=0.0, activated=False, **values)
    session.add(job)
    session.flush()
    return job


def update_job(session: Session, job_id: str, **values: Any) -> int:
    """Set columns of an open job; returns 0 when the job is no longer open."""
    result = session.execute(
        update(TrainingJob)
        .where(TrainingJob.job_id == job_id, TrainingJob.open_slot.is_not(None))
        .values(**values)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def finish_job(session: Session, job_id: str, now: datetime, **values: Any) -> int:
    """Close an open job (freeing the slot); returns 0 if it was already closed."""
    return update_job(session, job_id, open_slot=None, finished_at=now, **values)


def stale_open_jobs(session: Session, heartbeat_before: datetime) -> Sequence[TrainingJob]:
    """Open jobs whose process stopped reporting (or never started) before the cut-off."""
    return session.scalars(
        select(TrainingJob).where(
            TrainingJob.open_slot.is_not(None),
            (TrainingJob.heartbeat_at < heartbeat_before)
            | (TrainingJob.heartbeat_at.is_(None) & (TrainingJob.created_at < heartbeat_before)),
        )
    ).all()


def count_by_status(session: Session) -> dict[str, int]:
    """How many jobs are in each status."""
    rows = session.execute(select(TrainingJob.status, func.count()).group_by(TrainingJob.status))
    return {status: int(count) for status, count in rows.all()}
