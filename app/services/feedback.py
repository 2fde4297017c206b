"""Feedback labels: proposed by clients, reviewed by trainers, read back for retraining.

The trust model: a label from a client that may only predict is a proposal and
never reaches training until a client with the `train` scope accepts it (or the
deployment sets FEEDBACK_AUTO_ACCEPT). Labels must name a category the service
already knows, so a proposal can neither invent classes nor smuggle text into
training snapshots and metric labels; only a reviewer adds a new category, and
only by saying so (`new_category: true`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from app.core.errors import InsufficientScope, NotFound, Unprocessable
from app.core.review import FeedbackStatus
from app.core.scopes import Scope
from app.crud import feedback as crud
from app.crud import model_version as model_crud
from app.db.models import Feedback

logger = logging.getLogger(__name__)

# Scopes whose holders may accept, reject and add categories.
REVIEW_SCOPES = frozenset({Scope.train.value})


class FeedbackNotFound(NotFound):
    """No feedback row with this id."""

    def __init__(self, feedback_id: int) -> None:
        super().__init__(f"feedback {feedback_id} does not exist")


class UnknownCategory(Unprocessable):
    """A label outside the known categories, without a reviewer adding it."""

    def __init__(self, category: str, *, may_add: bool) -> None:
        hint = (
            "send new_category: true to add it"
            if may_add
            else "only a client with the train scope can add a category"
        )
        super().__init__(
            f"category {category!r} is not a known category (the active model's classes "
            f"or accepted feedback); {hint}"
        )


def may_review(scopes: frozenset[str]) -> bool:
    """True when a token's scopes let its bearer accept or reject feedback."""
    return not REVIEW_SCOPES.isdisjoint(scopes)


class FeedbackService:
    """Records, reviews and lists feedback; bound to one session."""

    def __init__(self, session: Session, *, auto_accept: bool = False) -> None:
        self._session = session
        self._auto_accept = auto_accept

    def known_categories(self) -> set[str]:
        """The active version's classes plus every accepted feedback category."""
        active = model_crud.get_active(self._session)
        known = set(active.classes) if active is not None else set()
        return known | crud.accepted_categories(self._session)

    def _check_category(self, category: str, *, new_category: bool, reviewer: bool) -> None:
        if new_category:
            if not reviewer:
                raise InsufficientScope([Scope.train.value])
            return
        if category not in self.known_categories():
            raise UnknownCategory(category, may_add=reviewer)

    def record(
        self,
        *,
        product_name: str,
        category: str,
        predicted_category: str | None,
        model_version: str | None,
        client_id: str,
        reviewer: bool,
        new_category: bool = False,
    ) -> Feedback:
        """Store one label: accepted at once from a reviewer or with auto-accept, else proposed."""
        if (
            model_version is not None
            and model_crud.get_version(self._session, model_version) is None
        ):
            raise Unprocessable(f"model_version {model_version!r} does not exist")
        self._check_category(category, new_category=new_category, reviewer=reviewer)
        now = datetime.now(UTC)
        accepted = reviewer or self._auto_accept
        row = crud.create_feedback(
            self._session,
            product_name=product_name,
            category=category,
            predicted_category=predicted_category,
            model_version=model_version,
            client_id=client_id,
            created_at=now,
            status=FeedbackStatus.accepted if accepted else FeedbackStatus.proposed,
            # NULL reviewer with `accepted`: the deployment's auto-accept vouched for it.
            reviewed_by=client_id if reviewer else None,
            reviewed_at=now if accepted else None,
        )
        self._session.commit()
        return row

    def _require(self, feedback_id: int) -> Feedback:
        row = crud.get_feedback(self._session, feedback_id)
        if row is None:
            raise FeedbackNotFound(feedback_id)
        return row

    def accept(
        self,
        feedback_id: int,
        *,
        reviewer_id: str,
        category: str | None = None,
        new_category: bool = False,
    ) -> Feedback:
        """Accept a row for training, optionally correcting its label."""
        row = self._require(feedback_id)
        label = category if category is not None else row.category
        self._check_category(label, new_category=new_category, reviewer=True)
        row.category = label
        row.status = FeedbackStatus.accepted
        row.reviewed_by = reviewer_id
        row.reviewed_at = datetime.now(UTC)
        self._session.commit()
        logger.info(
            "feedback accepted",
            extra={"feedback_id": feedback_id, "reviewer": reviewer_id, "new": new_category},
        )
        return row

    def reject(self, feedback_id: int, *, reviewer_id: str) -> Feedback:
        """Keep a row out of training for good (until someone accepts it)."""
        row = self._require(feedback_id)
        row.status = FeedbackStatus.rejected
        row.reviewed_by = reviewer_id
        row.reviewed_at = datetime.now(UTC)
        self._session.commit()
        logger.info(
            "feedback rejected", extra={"feedback_id": feedback_id, "reviewer": reviewer_id}
        )
        return row

    def list(
        self, *, model_version: str | None, status: str | None, limit: int, offset: int
    ) -> tuple[int, Sequence[Feedback]]:
        """(total matching, one page of them); status None means every status."""
        wanted = crud.ANY_STATUS if status is None else status
        total = crud.count_feedback(self._session, model_version=model_version, status=wanted)
        rows = crud.list_feedback(
            self._session, model_version=model_version, status=wanted, limit=limit, offset=offset
        )
        return total, rows
