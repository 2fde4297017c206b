"""The console's review queue: logged predictions flagged `needs_review`, decided by people.

The queue is the last QUEUE_DAYS of flagged predictions that nobody has decided
yet, lowest score first. A decision covers the prediction and every undecided
flagged prediction of the same name in that window, or of a near-duplicate of it
(equal once case, spaces and punctuation go: app/db/name_key.py), so that one
call settles a name sent many times and spelled a few ways. Confirming or
correcting stores the label as feedback, accepted at once under the reviewer's
id (a person looked at it, which is what a `train` client's acceptance stands
for); skipping stores nothing but the decision, so the item leaves this
reviewer's and everyone's queue. The last decision can be undone: its rows
return to the queue and its feedback is rejected, so it is never trained on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, String, delete, exists, func, literal, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from app.core.errors import Conflict, GaroupaError, ModelNotReady, NotFound, Unprocessable
from app.db.models import PredictionLogEntry, ReviewDecision
from app.db.name_key import name_key, name_key_sql
from app.ml.explain import Explanation
from app.services.feedback import FeedbackService
from app.services.prediction import PredictionService

QUEUE_DAYS = 7
# A name sent more often than this in the window is decided in several steps.
MAX_GROUP = 500
SUGGESTIONS = 5
VARIANTS_SHOWN = 5
# Counting the whole queue would read every flagged row; past this it says "more than".
REMAINING_CAP = 10_000
ACTIONS = ("confirm", "correct", "skip")

_LOG = PredictionLogEntry


@dataclass(frozen=True)
class QueueItem:
    """The next prediction to decide, with what the active model says of its name now."""

    prediction: PredictionLogEntry
    # Other undecided flagged predictions of the same or a near-duplicate name that
    # the decision covers, and the most frequent other spellings among them.
    duplicates: int
    variants: list[tuple[str, int]]
    suggestions: list[tuple[str, float]]
    explanation: Explanation | None


@dataclass(frozen=True)
class Progress:
    """One reviewer's work today (UTC) and what is left for everyone."""

    decided_today: int
    agreement: float | None
    per_minute: float
    remaining: int
    remaining_capped: bool


class ReviewQueue:
    """Reads and decides the queue on one database session."""

    def __init__(
        self,
        session: Session,
        predictions: PredictionService,
        feedback: FeedbackService,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._session = session
        self._predictions = predictions
        self._feedback = feedback
        self._clock = clock

    def next(self) -> QueueItem | None:
        """The undecided flagged prediction with the lowest score, or None."""
        row = self._session.scalar(
            self._undecided().order_by(_LOG.score.asc(), _LOG.id.asc()).limit(1)
        )
        if row is None:
            return None
        group = self._group(row)
        duplicates = len(group) - 1
        spellings = Counter(name for _, name in group[1:] if name != row.product_name)
        variants = spellings.most_common(VARIANTS_SHOWN)
        try:
            ranked = self._predictions.predict(
                [row.product_name], SUGGESTIONS, explain=True
            ).ranked[0]
        except ModelNotReady:
            # No active version (all deactivated, or a fresh registry): the item can
            # still be skipped or corrected by hand.
            return QueueItem(row, duplicates, variants, [], None)
        return QueueItem(row, duplicates, variants, list(ranked.top_k), ranked.explanation)

    def categories(self) -> list[str]:
        """Every category a correction may name (the active version's and accepted ones)."""
        return sorted(self._feedback.known_categories())

    def decide(
        self, prediction_id: int, *, reviewer: str, action: str, category: str | None = None
    ) -> int:
        """Record a decision on a prediction and its same-name duplicates; how many rows.

        NotFound when the prediction is not an undecided flagged one of the window
        (decided by someone else meanwhile, say: Conflict then); Unprocessable for
        an unknown action or category.
        """
        if action not in ACTIONS:
            raise Unprocessable(f"action must be one of {', '.join(ACTIONS)}")
        row = self._session.scalar(self._undecided().where(_LOG.id == prediction_id))
        if row is None:
            if self._session.get(_LOG, prediction_id) is not None:
                raise Conflict("This prediction was decided already, or is not in the queue.")
            raise NotFound(f"No logged prediction {prediction_id}.")
        if action == "confirm":
            category = row.predicted_category
        elif action == "correct":
            if not category:
                raise Unprocessable("A correction needs a category.")
        else:
            category = None
        now = self._clock()
        group = self._group(row)
        decisions = [
            ReviewDecision(
                prediction_id=member,
                reviewer=reviewer,
                action=action,
                category=category,
                created_at=now,
            )
            for member, _ in group
        ]
        self._session.add_all(decisions)
        try:
            # Claims the rows first: a second reviewer deciding the same name at the
            # same moment fails here, before any feedback is written twice.
            self._session.flush()
        except IntegrityError:
            self._session.rollback()
            raise Conflict("Someone decided this prediction a moment ago.") from None
        if category is not None:
            try:
                feedback = self._feedback.record(
                    product_name=row.product_name,
                    category=category,
                    predicted_category=row.predicted_category,
                    model_version=row.model_version,
                    client_id=reviewer,
                    reviewer=True,
                )
            except (GaroupaError, SQLAlchemyError):
                # An unknown category, say: the claimed decisions go with it.
                self._session.rollback()
                raise
            for decision in decisions:
                decision.feedback_id = feedback.id
        self._session.commit()
        return len(decisions)

    def undo_last(self, reviewer: str) -> int:
        """Put the reviewer's latest decision back in the queue; how many rows returned."""
        latest = self._session.scalar(
            select(func.max(ReviewDecision.created_at)).where(ReviewDecision.reviewer == reviewer)
        )
        if latest is None:
            return 0
        rows = self._session.scalars(
            select(ReviewDecision).where(
                ReviewDecision.reviewer == reviewer, ReviewDecision.created_at == latest
            )
        ).all()
        feedback_ids = {r.feedback_id for r in rows if r.feedback_id is not None}
        self._session.execute(
            delete(ReviewDecision).where(ReviewDecision.id.in_([r.id for r in rows]))
        )
        self._session.commit()
        for feedback_id in feedback_ids:
            # Rejected, not deleted: the feedback table keeps its history.
            self._feedback.reject(feedback_id, reviewer_id=reviewer)
        return len(rows)

    def progress(self, reviewer: str) -> Progress:
        """Counts for the reviewer's progress panel."""
        now = self._clock()
        midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        mine = (ReviewDecision.reviewer == reviewer, ReviewDecision.created_at >= midnight)
        by_action = dict(
            self._session.execute(
                select(ReviewDecision.action, func.count(func.distinct(ReviewDecision.created_at)))
                .where(*mine)
                .group_by(ReviewDecision.action)
            ).all()
        )
        decided = sum(int(v) for v in by_action.values())
        judged = int(by_action.get("confirm", 0)) + int(by_action.get("correct", 0))
        recent = self._session.scalar(
            select(func.count(func.distinct(ReviewDecision.created_at))).where(
                ReviewDecision.reviewer == reviewer,
                ReviewDecision.created_at >= now - timedelta(minutes=10),
            )
        )
        left = self._session.scalar(
            select(func.count()).select_from(
                self._undecided().with_only_columns(_LOG.id).limit(REMAINING_CAP + 1).subquery()
            )
        )
        remaining = int(left or 0)
        return Progress(
            decided_today=decided,
            agreement=int(by_action.get("confirm", 0)) / judged if judged else None,
            per_minute=int(recent or 0) / 10,
            remaining=min(remaining, REMAINING_CAP),
            remaining_capped=remaining > REMAINING_CAP,
        )

    def _undecided(self) -> Select[PredictionLogEntry]:
        since = self._clock() - timedelta(days=QUEUE_DAYS)
        decided = exists().where(ReviewDecision.prediction_id == _LOG.id)
        # `needs_review` bare: the partial indexes' own condition (see migration 0007).
        return select(_LOG).where(_LOG.needs_review, _LOG.created_at >= since, ~decided)

    def _group(self, row: PredictionLogEntry) -> list[tuple[int, str]]:
        """The row and the undecided flagged rows of its name or a near-duplicate of it
        (app/db/name_key.py), as (id, name), the row first."""
        if name_key(row.product_name):
            dialect = self._session.get_bind().dialect.name
            same = name_key_sql(dialect, _LOG.product_name) == name_key_sql(
                dialect, literal(row.product_name, String)
            )
        else:
            # Nothing but punctuation: such names are alike only when equal.
            same = _LOG.product_name == row.product_name
        found = self._session.execute(
            self._undecided()
            .with_only_columns(_LOG.id, _LOG.product_name)
            .where(same)
            .order_by(_LOG.id)
            .limit(MAX_GROUP)
        ).all()
        others = [(i, name) for i, name in found if i != row.id]
        return [(row.id, row.product_name), *others][:MAX_GROUP]
