"""SQL for bulk scoring jobs. The calling service owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from app.db.models import BulkJob

OPEN_STATUSES = ("queued", "running")
# Any constant shared by every worker: the key of the PostgreSQL advisory lock that
# serialises admissions (ASCII "bulkjobs").
_ADMISSION_LOCK_KEY = 0x62756C6B6A6F6273


def get_job(session: Session, job_id: str) -> BulkJob | None:
    """The job with this id, or None."""
    return session.scalars(select(BulkJob).where(BulkJob.job_id == job_id)).one_or_none()


def lock_admissions(session: Session) -> None:
    """Serialise job admissions until the transaction ends, so the limits hold across workers.

    PostgreSQL takes a transaction-scoped advisory lock. SQLite needs none: the
    INSERT that follows takes its database-wide write lock, and the count after
    it sees every admission committed before.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADMISSION_LOCK_KEY})


def create_job(session: Session, **values: Any) -> BulkJob:
    """Stage a queued job."""
    job = BulkJob(status="queued", rows=0, bad_rows=0, bytes_read=0, **values)
    session.add(job)
    session.flush()
    return job


def count_open(session: Session, client_id: str | None = None) -> int:
    """Queued or running jobs, of one client or of everyone."""
    query = select(func.count()).select_from(BulkJob).where(BulkJob.status.in_(OPEN_STATUSES))
    if client_id is not None:
        query = query.where(BulkJob.client_id == client_id)
    return int(session.scalar(query) or 0)


def open_jobs(session: Session) -> Sequence[BulkJob]:
    """Every queued or running job (a few: MAX_BULK_JOBS bounds them)."""
    return session.scalars(select(BulkJob).where(BulkJob.status.in_(OPEN_STATUSES))).all()


def update_job(session: Session, job_id: str, **values: Any) -> int:
    """Set columns of an open job; returns 0 when the job is no longer open."""
    result = session.execute(
        update(BulkJob)
        .where(BulkJob.job_id == job_id, BulkJob.status.in_(OPEN_STATUSES))
        .values(**values)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def start_job(session: Session, job_id: str, **values: Any) -> int:
    """Move a queued job to running; returns 0 if it is not queued any more."""
    result = session.execute(
        update(BulkJob)
        .where(BulkJob.job_id == job_id, BulkJob.status == "queued")
        .values(status="running", **values)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def finish_job(session: Session, job_id: str, **values: Any) -> int:
    """Close an open job (status, finished_at, expires_at among `values`); 0 if already closed."""
    return update_job(session, job_id, **values)


def jobs_finished_before(session: Session, cutoff: datetime, limit: int) -> Sequence[BulkJob]:
    """Closed jobs that ended before `cutoff`, oldest first."""
    return session.scalars(
        select(BulkJob)
        .where(BulkJob.finished_at < cutoff)
        .order_by(BulkJob.finished_at)
        .limit(limit)
    ).all()


def failed_jobs_since(session: Session, since: datetime) -> Sequence[BulkJob]:
    """Jobs that failed after `since` (their leftover files are deleted early)."""
    return session.scalars(
        select(BulkJob).where(BulkJob.status == "failed", BulkJob.finished_at >= since)
    ).all()


def delete_jobs(session: Session, job_ids: Sequence[str]) -> int:
    """Delete jobs by id; returns how many went."""
    result = session.execute(delete(BulkJob).where(BulkJob.job_id.in_(job_ids)))
    return int(result.rowcount)  # type: ignore[attr-defined]
