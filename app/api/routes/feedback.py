"""Feedback routes: clients report true categories (`predict`); trainers read them (`train`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import ContainerDep, PredictScope, TrainScope
from app.schemas.errors import BearerErrorResponse
from app.schemas.training import FeedbackIn, FeedbackList, FeedbackOut
from app.services.feedback import FeedbackService

router = APIRouter(prefix="/feedback", tags=["feedback"])

_401 = {"model": BearerErrorResponse, "description": "Missing, invalid or revoked token."}


@router.post(
    "/",
    status_code=201,
    response_model=FeedbackOut,
    summary="Report a product's true category",
    responses={
        401: _401,
        403: {"model": BearerErrorResponse, "description": "Token lacks `predict`."},
        422: {"description": "Invalid fields or unknown model_version."},
    },
)
@router.post("", status_code=201, response_model=FeedbackOut, include_in_schema=False)
def create_feedback(body: FeedbackIn, client: PredictScope, services: ContainerDep) -> FeedbackOut:
    """Store a ground-truth label; the next training job includes it unless told not to."""
    with services.sessions() as session:
        row = FeedbackService(session).record(
            product_name=body.product_name,
            category=body.category,
            predicted_category=body.predicted_category,
            model_version=body.model_version,
            client_id=client.client_id,
        )
        return FeedbackOut.model_validate(row)


@router.get(
    "/",
    response_model=FeedbackList,
    summary="List feedback",
    responses={401: _401, 403: {"model": BearerErrorResponse, "description": "Needs `train`."}},
)
def list_feedback(
    _: TrainScope,
    services: ContainerDep,
    model_version: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> FeedbackList:
    """Feedback in arrival order, optionally only for one model version."""
    with services.sessions() as session:
        total, rows = FeedbackService(session).list(
            model_version=model_version, limit=limit, offset=offset
        )
        return FeedbackList(total=total, items=[FeedbackOut.model_validate(r) for r in rows])
