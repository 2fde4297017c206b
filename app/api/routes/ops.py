"""Operations routes, unauthenticated for load balancers and scrapers: health, readiness, metrics.

They reveal no client data; restrict `/metrics` at the network edge if model
versions and category counts are sensitive where you deploy.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from app.api.deps import HealthServiceDep
from app.core.metrics import CONTENT_TYPE_LATEST
from app.schemas.ops import Health, Readiness

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health, summary="Liveness: the process answers")
async def health() -> Health:
    """Always 200 while the process can answer at all."""
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Readiness,
    summary="Readiness: database reachable and a model scoring",
    responses={503: {"model": Readiness, "description": "Not ready; `reasons` says why."}},
)
def ready(health: HealthServiceDep) -> JSONResponse:
    """200 when the database answers and the loaded model scores a probe name; else 503."""
    readiness = health.readiness()
    return JSONResponse(
        readiness.model_dump(), status_code=200 if readiness.status == "ready" else 503
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Text exposition."}},
)
async def metrics(health: HealthServiceDep) -> Response:
    """Request counts and latency by route and status, predictions by category, model
    version, token outcomes and training jobs, summed over every worker process."""
    payload = await run_in_threadpool(health.metrics_exposition)
    return Response(payload, media_type=CONTENT_TYPE_LATEST)
