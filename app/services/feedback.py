"""Feedback labels: stored with the prediction they correct, read back for retraining."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.errors import Unprocessable
from app.crud import feedback as crud
from app.crud import model_version as model_crud
from app.db.models import Feedback


class FeedbackService:
    """Records and lists feedback; bound to one session."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def record(
        self,
        *,
        product_name: str,
        category: str,
        predicted_category: str | None,
        model_version: str | None,
        client_id: str,
    ) -> Feedback:
        """Store one label; a named model version must exist."""
        if (
            model_version is not None
            and model_crud.get_version(self._session, model_version) is None
        ):
            raise Unprocessable(f"model_version {model_version!r} does not exist")
        row = crud.create_feedback(
            self._session,
            product_name=product_name,
            category=category,
            predicted_category=predicted_category,
            model_version=model_version,
            client_id=client_id,
            created_at=datetime.now(UTC),
        )
        self._session.commit()
        return row

    def list(
        self, *, model_version: str | None, limit: int, offset: int
    ) -> tuple[int, Sequence[Feedback]]:
        """(total matching, one page of them)."""
        total_query = select(func.count(Feedback.id))
        if model_version is not None:
            total_query = total_query.where(Feedback.model_version == model_version)
        total = int(self._session.scalar(total_query) or 0)
        rows = crud.list_feedback(
            self._session, model_version=model_version, limit=limit, offset=offset
        )
        return total, rows
