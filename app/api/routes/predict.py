"""Prediction routes (scope `predict`)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import PredictScope
from app.core.errors import ModelNotReady
from app.schemas.errors import BearerErrorResponse, ErrorResponse
from app.schemas.prediction import (
    BatchPredictionRequest,
    BatchPredictionResponse,
    PredictionRequest,
    PredictionResponse,
)

router = APIRouter(prefix="/predict", tags=["predict"])

_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": BearerErrorResponse, "description": "Missing, invalid or revoked token."},
    403: {"model": BearerErrorResponse, "description": "Token lacks the `predict` scope."},
    503: {"model": ErrorResponse, "description": "No model is trained yet."},
}


@router.post(
    "/",
    response_model=PredictionResponse,
    summary="Predict one product's category",
    responses=_ERRORS,
)
@router.post("", response_model=PredictionResponse, include_in_schema=False)
async def predict(body: PredictionRequest, _: PredictScope) -> PredictionResponse:
    """Predict the category of one product name, with calibrated top-k scores."""
    raise ModelNotReady()


@router.post(
    "/batch",
    response_model=BatchPredictionResponse,
    summary="Predict categories for up to 1,000 names",
    responses=_ERRORS,
)
async def predict_batch(body: BatchPredictionRequest, _: PredictScope) -> BatchPredictionResponse:
    """Predict categories for many names, answered in input order."""
    raise ModelNotReady()
