"""Gathers every router."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.routes import (
    admin,
    auth,
    bulk,
    datasets,
    feedback,
    models,
    ops,
    predict,
    predictions,
    training,
)

api_router = APIRouter()
# Routes are matched in this order on every request: the hottest first.
api_router.include_router(predict.router)
api_router.include_router(auth.router)
api_router.include_router(training.router)
api_router.include_router(datasets.router)
api_router.include_router(models.router)
api_router.include_router(feedback.router)
api_router.include_router(ops.router)
api_router.include_router(admin.router)
api_router.include_router(bulk.router)
api_router.include_router(predictions.router)
api_router.include_router(predictions.admin_router)
