"""SQL for the model registry. The calling service owns the transaction."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session

from app.db.models import ModelVersion, TrainingJob

_VERSION = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")


def version_key(version: str) -> tuple[int, int, int]:
    """Sort key of a `vMAJOR.MINOR.PATCH` string (unparseable ones sort first)."""
    match = _VERSION.match(version)
    if not match:
        return (-1, -1, -1)
    major, minor, patch = (int(g) for g in match.groups())
    return (major, minor, patch)


def next_version(session: Session) -> str:
    """The version after the highest one recorded or reserved by a job: v1.0.0, v1.0.1, ..."""
    # Numbers reserved by jobs that failed are never reused, so a version name
    # always means one thing in logs and job histories.
    versions = [
        *session.scalars(select(ModelVersion.version)),
        *session.scalars(select(TrainingJob.new_model_version)),
    ]
    if not versions:
        return "v1.0.0"
    major, minor, patch = max(version_key(v) for v in versions)
    if major < 0:
        return "v1.0.0"
    return f"v{major}.{minor}.{patch + 1}"


def get_version(session: Session, version: str) -> ModelVersion | None:
    """The row of `version`, or None."""
    return session.scalars(
        select(ModelVersion).where(ModelVersion.version == version)
    ).one_or_none()


def get_active(session: Session) -> ModelVersion | None:
    """The active version's row, or None before any model is active."""
    return session.scalars(select(ModelVersion).where(ModelVersion.is_active)).one_or_none()


def active_pointer(session: Session) -> Row[str, str] | None:
    """Just (version, sha256) of the active model: the cheap query workers poll."""
    return session.execute(
        select(ModelVersion.version, ModelVersion.sha256).where(ModelVersion.is_active)
    ).one_or_none()


def list_versions(session: Session) -> Sequence[ModelVersion]:
    """Every version, newest first."""
    return session.scalars(select(ModelVersion).order_by(ModelVersion.id.desc())).all()


def create_version(session: Session, **values: Any) -> ModelVersion:
    """Stage a new, inactive version row."""
    row = ModelVersion(is_active=False, activated_at=None, **values)
    session.add(row)
    session.flush()
    return row


def set_active(session: Session, version: str, now: datetime) -> None:
    """Make `version` the only active one (both statements in the caller's transaction)."""
    # Clear first: the partial unique index allows one active row at any instant.
    session.execute(update(ModelVersion).where(ModelVersion.is_active).values(is_active=False))
    session.execute(
        update(ModelVersion)
        .where(ModelVersion.version == version)
        .values(is_active=True, activated_at=now)
    )
