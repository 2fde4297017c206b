"""Prediction routes (scope `predict`)."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from app.api.deps import (
    PredictionLogDep,
    PredictionServiceDep,
    PredictScope,
    SettingsDep,
    ShadowEvaluatorDep,
)
from app.core.logging import request_id_var
from app.schemas.errors import BearerErrorResponse, ErrorResponse
from app.schemas.prediction import (
    BatchItem,
    BatchPredictionRequest,
    BatchPredictionResponse,
    CategoryScore,
    Explanation,
    PredictionRequest,
    PredictionResponse,
)
from app.services.prediction import review_threshold

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
    # `explanation` appears only when asked for.
    response_model_exclude_none=True,
    summary="Predict one product's category",
    responses=_ERRORS,
)
@router.post(
    "", response_model=PredictionResponse, response_model_exclude_none=True, include_in_schema=False
)
async def predict(
    body: PredictionRequest,
    client: PredictScope,
    predictions: PredictionServiceDep,
    log: PredictionLogDep,
    settings: SettingsDep,
    shadow: ShadowEvaluatorDep,
) -> PredictionResponse:
    """Predict the category of one product name, with calibrated top-k scores.

    `prediction_score` is the calibrated probability that the category is right.
    The prediction is recorded in the caller's history (`GET /predictions/history`).
    """
    started = time.perf_counter()
    # The hottest route: scoring, tens of microseconds on the fast path, runs
    # inline rather than paying for the hop to a worker thread.
    result = predictions.predict([body.product_name], body.top_k, body.explain)
    ranked = result.ranked[0]
    threshold = review_threshold(body.min_score, settings, result)
    needs_review = result.needs_review(ranked, threshold)
    shadow.offer(result, [body.product_name], [needs_review], body.min_score)
    if log.wants():
        log.record(
            client.client_id,
            result.model_version,
            [(body.product_name, ranked.category, ranked.score, needs_review, ranked.in_scope)],
            request_id_var.get(),
            (time.perf_counter() - started) * 1000.0,
        )
    explanation = ranked.explanation
    return PredictionResponse(
        predicted_category=ranked.category,
        prediction_score=ranked.score,
        model_version=result.model_version,
        top_k=[CategoryScore(category=c, score=s) for c, s in ranked.top_k],
        in_scope=ranked.in_scope,
        needs_review=needs_review,
        explanation=None if explanation is None else Explanation.model_validate(explanation),
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
    body: BatchPredictionRequest,
    client: PredictScope,
    predictions: PredictionServiceDep,
    log: PredictionLogDep,
    settings: SettingsDep,
    shadow: ShadowEvaluatorDep,
) -> BatchPredictionResponse:
    """Predict categories for many names, answered in input order.

    The names together may hold at most MAX_BATCH_CHARS characters after NFKC.
    Each name is recorded in the caller's history (`GET /predictions/history`).
    """
    _check_batch_size(body, settings.max_batch_chars)
    started = time.perf_counter()
    names = body.product_names
    if len(names) <= _INLINE_BATCH:
        result = predictions.predict(names)
    else:
        result = await run_in_threadpool(predictions.predict, names)
    threshold = review_threshold(body.min_score, settings, result)
    items = [
        BatchItem(
            product_name=name,
            predicted_category=r.category,
            prediction_score=r.score,
            in_scope=r.in_scope,
            needs_review=result.needs_review(r, threshold),
        )
        for name, r in zip(names, result.ranked, strict=True)
    ]
    shadow.offer(result, names, [i.needs_review for i in items], body.min_score)
    if log.wants():
        log.record(
            client.client_id,
            result.model_version,
            [
                (
                    i.product_name,
                    i.predicted_category,
                    i.prediction_score,
                    i.needs_review,
                    i.in_scope,
                )
                for i in items
            ],
            request_id_var.get(),
            (time.perf_counter() - started) * 1000.0,
        )
    return BatchPredictionResponse(model_version=result.model_version, predictions=items)
