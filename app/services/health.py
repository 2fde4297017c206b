"""Readiness and scrape-time metrics: what operators and load balancers ask a worker."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.core.metrics import Metrics
from app.crud import model_version as model_crud
from app.crud import status as status_crud
from app.crud import training_job as job_crud
from app.schemas.ops import Readiness
from app.services.prediction import PredictionService

if TYPE_CHECKING:
    from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

# A name every model must score; proves the loaded model works, not just that it loaded.
PROBE = "susu ultra coklat 250ml"
JOB_STATUSES = ("queued", "running", "succeeded", "failed")


class HealthService:
    """Answers /ready and /metrics for one worker; bound to one session."""

    def __init__(self, session: Session, predictions: PredictionService, metrics: Metrics) -> None:
        self._session = session
        self._predictions = predictions
        self._metrics = metrics

    def readiness(self) -> Readiness:
        """Ready when the database answers and the loaded model scores a probe name."""
        reasons: list[str] = []
        checks: dict[str, str] = {}
        try:
            status_crud.ping(self._session)
            checks["database"] = "ok"
        except SQLAlchemyError as exc:  # unreachable or refusing: "not ready", never a 500
            checks["database"] = "unreachable"
            reasons.append(f"database unreachable ({type(exc).__name__})")
        model = self._predictions.model
        if model is None:
            checks["model"] = "none"
            reasons.append(
                self._predictions.last_error or "no model is trained yet (python train.py)"
            )
        else:
            try:
                score = model.rank([PROBE])[0].score
                if not 0.0 <= score <= 1.0:
                    raise ValueError(f"probe score {score} is not a probability")
                checks["model"] = model.version
            except Exception as exc:  # a probe: whatever breaks scoring means "not ready"
                checks["model"] = "failing"
                reasons.append(f"model {model.version} fails to score ({type(exc).__name__})")
        return Readiness(
            status="ready" if not reasons else "not ready", checks=checks, reasons=reasons
        )

    def metrics_exposition(self) -> bytes:
        """Every worker's metrics plus the registry's, read now (blocking)."""
        return self._metrics.render([_RegistryCollector(self._session)])


class _RegistryCollector:
    """Values read from the database at scrape time: true across workers and replicas."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            counts = job_crud.count_by_status(self._session)
            pointer = model_crud.active_pointer(self._session)
        except SQLAlchemyError as exc:
            # Scrapes must not fail because the database is down; /ready reports that.
            logger.warning("registry metrics unavailable", extra={"error": type(exc).__name__})
            return
        jobs = GaugeMetricFamily(
            "garoupa_training_jobs", "Training jobs recorded, by status.", labels=["status"]
        )
        for status in JOB_STATUSES:
            jobs.add_metric([status], float(counts.get(status, 0)))
        yield jobs
        active = GaugeMetricFamily(
            "garoupa_model_active_info",
            "The registry's active model version (value 1).",
            labels=["version"],
        )
        if pointer is not None:
            active.add_metric([pointer[0]], 1.0)
        yield active
