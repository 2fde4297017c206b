"""Feedback routes: clients propose true categories (`predict`); trainers review them (`train`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query
from fastapi.openapi.models import Example

from app.api.deps import FeedbackClient, FeedbackServiceDep, TrainScope
from app.core.review import FeedbackStatus
from app.schemas.errors import BearerErrorResponse
from app.schemas.training import FeedbackIn, FeedbackList, FeedbackOut, FeedbackReviewRequest
from app.services.feedback import may_review

router = APIRouter(prefix="/feedback", tags=["feedback"])

_401 = {"model": BearerErrorResponse, "description": "Missing, invalid or revoked token."}
_403_TRAIN = {"model": BearerErrorResponse, "description": "Needs `train`."}
_404 = {"description": "No feedback with this id."}
_422_CATEGORY = {
    "description": "Unsafe category text, or a category no model or accepted feedback knows "
    "(a `train` client adds one with `new_category: true`)."
}
# The body is optional, so its schema is `anyOf` and the model's examples do not show.
_ACCEPT_EXAMPLES: dict[str, Example] = {
    "as proposed": {"summary": "Keep the proposed category", "value": {}},
    "corrected": {"summary": "Correct the label", "value": {"category": "Susu"}},
    "new category": {
        "summary": "Add a category no model knows yet",
        "value": {"category": "Rokok", "new_category": True},
    },
}
# Feedback ids are 32-bit integers on PostgreSQL; larger ones cannot exist (and would
# make the database raise instead of answering 404).
FeedbackId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post(
    "/",
    status_code=201,
    response_model=FeedbackOut,
    summary="Report a product's true category",
    responses={
        401: _401,
        403: {
            "model": BearerErrorResponse,
            "description": "Token lacks `predict` (or `train`, for `new_category`).",
        },
        422: {"description": "Invalid fields, unknown model_version or unknown category."},
        429: {"description": "Over RATE_LIMIT_FEEDBACK; see Retry-After."},
    },
)
@router.post("", status_code=201, response_model=FeedbackOut, include_in_schema=False)
def create_feedback(
    body: FeedbackIn, client: FeedbackClient, feedback: FeedbackServiceDep
) -> FeedbackOut:
    """Store a label: trained on at once from a `train` client, else a proposal awaiting review."""
    row = feedback.record(
        product_name=body.product_name,
        category=body.category,
        predicted_category=body.predicted_category,
        model_version=body.model_version,
        client_id=client.client_id,
        reviewer=may_review(client.scopes),
        new_category=body.new_category,
    )
    return FeedbackOut.model_validate(row)


@router.post(
    "/{feedback_id}/accept",
    response_model=FeedbackOut,
    summary="Accept feedback for training",
    responses={401: _401, 403: _403_TRAIN, 404: _404, 422: _422_CATEGORY},
)
def accept_feedback(
    feedback_id: FeedbackId,
    client: TrainScope,
    feedback: FeedbackServiceDep,
    body: Annotated[FeedbackReviewRequest | None, Body(openapi_examples=_ACCEPT_EXAMPLES)] = None,
) -> FeedbackOut:
    """Let the next training job use this row, optionally with a corrected category."""
    review = body or FeedbackReviewRequest()
    row = feedback.accept(
        feedback_id,
        reviewer_id=client.client_id,
        category=review.category,
        new_category=review.new_category,
    )
    return FeedbackOut.model_validate(row)


@router.post(
    "/{feedback_id}/reject",
    response_model=FeedbackOut,
    summary="Reject feedback",
    responses={401: _401, 403: _403_TRAIN, 404: _404},
)
def reject_feedback(
    feedback_id: FeedbackId, client: TrainScope, feedback: FeedbackServiceDep
) -> FeedbackOut:
    """Keep this row out of training."""
    row = feedback.reject(feedback_id, reviewer_id=client.client_id)
    return FeedbackOut.model_validate(row)


@router.get(
    "/",
    response_model=FeedbackList,
    summary="List feedback",
    responses={401: _401, 403: _403_TRAIN},
)
def list_feedback(
    _: TrainScope,
    feedback: FeedbackServiceDep,
    model_version: Annotated[str | None, Query(max_length=32)] = None,
    status: Annotated[FeedbackStatus | None, Query(description="Only rows in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> FeedbackList:
    """Feedback in arrival order, optionally only for one model version or review state."""
    total, rows = feedback.list(
        model_version=model_version, status=status, limit=limit, offset=offset
    )
    return FeedbackList(total=total, items=[FeedbackOut.model_validate(r) for r in rows])
