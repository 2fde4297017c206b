"""SQL for feedback labels. The calling service owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app.core.review import FeedbackStatus
from app.db.models import Feedback

# Marks "every status" where a filter is optional, since None cannot: the
# training default must stay "accepted only" for callers that pass nothing.
ANY_STATUS = "any"


def create_feedback(session: Session, **values: Any) -> Feedback:
    """Stage one feedback row."""
    row = Feedback(**values)
    session.add(row)
    session.flush()
    return row


def get_feedback(session: Session, feedback_id: int) -> Feedback | None:
    """One row by id, or None."""
    return session.get(Feedback, feedback_id)


def _filtered(query: Select[Any], *, model_version: str | None, status: str) -> Select[Any]:
    if model_version is not None:
        query = query.where(Feedback.model_version == model_version)
    if status != ANY_STATUS:
        query = query.where(Feedback.status == status)
    return query


def list_feedback(
    session: Session,
    *,
    model_version: str | None = None,
    status: str = FeedbackStatus.accepted,
    limit: int | None = None,
    offset: int = 0,
) -> Sequence[Feedback]:
    """Feedback in the order it arrived; by default only accepted rows (what training uses).

    Pass `status=ANY_STATUS` for every row, or one FeedbackStatus.
    """
    query = _filtered(
        select(Feedback).order_by(Feedback.id), model_version=model_version, status=status
    )
    if limit is not None:
        query = query.offset(offset).limit(limit)
    return session.scalars(query).all()


def list_training_feedback(session: Session) -> Sequence[Feedback]:
    """The feedback a training job may use: accepted rows only, in arrival order."""
    return list_feedback(session, status=FeedbackStatus.accepted)


def count_feedback(session: Session, *, model_version: str | None, status: str) -> int:
    """How many rows match the filters."""
    query = _filtered(select(func.count(Feedback.id)), model_version=model_version, status=status)
    return int(session.scalar(query) or 0)


def accepted_categories(session: Session) -> set[str]:
    """Categories of accepted feedback: labels a reviewer has vouched for."""
    query = select(Feedback.category).where(Feedback.status == FeedbackStatus.accepted).distinct()
    return set(session.scalars(query))
