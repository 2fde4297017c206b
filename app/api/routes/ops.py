"""Operations routes, unauthenticated for load balancers and scrapers: health, readiness, metrics.

They reveal no client data; restrict `/metrics` at the network edge if model
versions and category counts are sensitive where you deploy.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from app.api.deps import ContainerDep
from app.core.metrics import CONTENT_TYPE_LATEST, Collector, GaugeMetricFamily, render
from app.db.models import ModelVersion, TrainingJob
from app.schemas.ops import Health, Readiness
from app.services.container import ServiceContainer

router = APIRouter(tags=["operations"])

# A name every model must score; proves the loaded model works, not just that it loaded.
PROBE = "susu ultra coklat 250ml"


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
def ready(services: ContainerDep) -> JSONResponse:
    """200 when the database answers and the loaded model scores a probe name; else 503."""
    reasons: list[str] = []
    checks: dict[str, str] = {}
    try:
        with services.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError as exc:  # unreachable or refusing: "not ready", never a 500
        checks["database"] = "unreachable"
        reasons.append(f"database unreachable ({type(exc).__name__})")
    model = services.predictions.model
    if model is None:
        checks["model"] = "none"
        reason = services.predictions.last_error or "no model is trained yet (python train.py)"
        reasons.append(reason)
    else:
        try:
            score = model.rank([PROBE])[0].score
            if not 0.0 <= score <= 1.0:
                raise ValueError(f"probe score {score} is not a probability")
            checks["model"] = model.version
        except Exception as exc:  # a probe: whatever breaks scoring means "not ready"
            checks["model"] = "failing"
            reasons.append(f"model {model.version} fails to score ({type(exc).__name__})")
    body = Readiness(status="ready" if not reasons else "not ready", checks=checks, reasons=reasons)
    return JSONResponse(body.model_dump(), status_code=200 if not reasons else 503)


class _RegistryCollector(Collector):
    """Values read from the database at scrape time: true across workers and replicas."""

    def __init__(self, services: ServiceContainer) -> None:
        self._services = services

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily(
            "garoupa_training_jobs", "Training jobs recorded, by status.", labels=["status"]
        )
        active = GaugeMetricFamily(
            "garoupa_model_active_info",
            "The registry's active model version (value 1).",
            labels=["version"],
        )
        try:
            with self._services.sessions() as session:
                counts = dict(
                    session.execute(
                        select(TrainingJob.status, func.count()).group_by(TrainingJob.status)
                    ).all()
                )
                version = session.scalar(select(ModelVersion.version).where(ModelVersion.is_active))
        except SQLAlchemyError:
            # Scrapes must not fail because the database is down; /ready reports that.
            return
        for status in ("queued", "running", "succeeded", "failed"):
            jobs.add_metric([status], float(counts.get(status, 0)))
        yield jobs
        if version is not None:
            active.add_metric([version], 1.0)
        yield active


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Text exposition."}},
)
async def metrics(services: ContainerDep) -> Response:
    """Request counts and latency by route and status, predictions by category, model
    version, token outcomes and training jobs, summed over every worker process."""
    payload = await run_in_threadpool(render, _RegistryCollector(services))
    return Response(payload, media_type=CONTENT_TYPE_LATEST)
