"""SQL for feedback labels. The calling service owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Feedback


def create_feedback(session: Session, **values: Any) -> Feedback:
    """Stage one feedback row."""
    row = Feedback(**values)
    session.add(row)
    session.flush()
    return row


def list_feedback(
    session: Session, *, model_version: str | None = None, limit: int | None = None, offset: int = 0
) -> Sequence[Feedback]:
    """Feedback in the order it arrived, optionally for one model version."""
    query = select(Feedback).order_by(Feedback.id)
    if model_version is not None:
        query = query.where(Feedback.model_version == model_version)
    if limit is not None:
        query = query.offset(offset).limit(limit)
    return session.scalars(query).all()
