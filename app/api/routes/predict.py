"""Prediction routes (scope `predict`)."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from app.api.deps import ContainerDep, PredictScope
from app.core.metrics import count_prediction
from app.schemas.errors import BearerErrorResponse, ErrorResponse
from app.schemas.prediction import (
    BatchItem,
    BatchPredictionRequest,
    BatchPredictionResponse,
    CategoryScore,
    PredictionRequest,
    PredictionResponse,
)
from app.services.container import ServiceContainer

# Small batches score faster inline than the hop to a worker thread costs.
_INLINE_BATCH = 32

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
async def predict(body: PredictionRequest, _: PredictScope, request: Request) -> PredictionResponse:
    """Predict the category of one product name, with calibrated top-k scores.

    `prediction_score` is the calibrated probability that the category is right.
    """
    # The hottest route: the container is read straight from the app (a
    # dependency costs more than the attribute read), and scoring, tens of
    # microseconds on the fast path, runs inline rather than in a thread.
    services: ServiceContainer = request.app.state.services
    model = services.predictions.require_model()
    ranked = model.rank([body.product_name], body.top_k)[0]
    count_prediction(ranked.category)
    return PredictionResponse(
        predicted_category=ranked.category,
        prediction_score=ranked.score,
        model_version=model.version,
        top_k=[CategoryScore(category=c, score=s) for c, s in ranked.top_k],
    )


def _check_batch_size(body: BatchPredictionRequest, limit: int) -> None:
    # A settings-dependent bound, so it cannot live in the schema; it is answered
    # as the schema's own 422 would be, naming the field.
    total = body.normalized_chars()
    if total > limit:
        raise RequestValidationError(
            [
                {
                    "type": "too_long",
                    "loc": ("body", "product_names"),
                    "msg": f"The names hold {total} characters after Unicode NFKC "
                    f"normalisation; a batch may hold at most {limit} (MAX_BATCH_CHARS)",
                    "input": None,
                    "ctx": {"max_length": limit},
                }
            ]
        )


@router.post(
    "/batch",
    response_model=BatchPredictionResponse,
    summary="Predict categories for up to 1,000 names",
    responses=_ERRORS,
)
async def predict_batch(
    body: BatchPredictionRequest, _: PredictScope, services: ContainerDep
) -> BatchPredictionResponse:
    """Predict categories for many names, answered in input order.

    The names together may hold at most MAX_BATCH_CHARS characters after NFKC.
    """
    _check_batch_size(body, services.settings.max_batch_chars)
    model = services.predictions.require_model()
    names = body.product_names
    if len(names) <= _INLINE_BATCH:
        ranked = model.rank(names)
    else:
        ranked = await run_in_threadpool(model.rank, names)
    for category, count in Counter(r.category for r in ranked).items():
        count_prediction(category, count)
    return BatchPredictionResponse(
        model_version=model.version,
        predictions=[
            BatchItem(product_name=name, predicted_category=r.category, prediction_score=r.score)
            for name, r in zip(names, ranked, strict=True)
        ],
    )
