"""Model registry routes (scope `train`): list, inspect, activate or roll back."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import ContainerDep, TrainScope
from app.core.errors import Conflict
from app.ml.artifacts import ArtifactError
from app.schemas.errors import BearerErrorResponse, ErrorResponse
from app.schemas.training import ActiveModel, ModelDetail, ModelList, ModelSummary

router = APIRouter(prefix="/models", tags=["models"])

_AUTH_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": BearerErrorResponse, "description": "Missing, invalid or revoked token."},
    403: {"model": BearerErrorResponse, "description": "Token lacks the `train` scope."},
}
_NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "Unknown version."}
}


@router.get("/", response_model=ModelList, summary="List model versions", responses=_AUTH_ERRORS)
def list_models(_: TrainScope, services: ContainerDep) -> ModelList:
    """Every version, newest first, with its headline metrics."""
    with services.sessions() as session:
        rows = services.model_registry(session).list()
        return ModelList(models=[ModelSummary.model_validate(r) for r in rows])


@router.get(
    "/active", response_model=ActiveModel, summary="The active model", responses=_AUTH_ERRORS
)
def active_model(_: TrainScope, services: ContainerDep) -> ActiveModel:
    """Whether a model is trained, and its version, algorithm, best params and metrics."""
    serving = services.predictions.model
    with services.sessions() as session:
        row = services.model_registry(session).active()
    if row is None:
        return ActiveModel(
            trained=False,
            message="No model is trained yet. Train one with `python train.py` or POST /training/.",
        )
    metrics = {k: v for k, v in row.metrics.items() if k not in ("per_class", "confusion_matrix")}
    return ActiveModel(
        trained=True,
        version=row.version,
        serving_version=serving.version if serving else None,
        algorithm=row.algorithm,
        best_params=row.best_params,
        params=row.params,
        metrics=metrics,
        classes=row.classes,
        created_at=row.created_at,
        activated_at=row.activated_at,
    )


@router.get(
    "/{version}",
    response_model=ModelDetail,
    summary="One model version in full",
    responses={**_AUTH_ERRORS, **_NOT_FOUND},
)
def get_model(version: str, _: TrainScope, services: ContainerDep) -> ModelDetail:
    """Metrics including per-class scores and the confusion matrix, data provenance, hashes."""
    with services.sessions() as session:
        return ModelDetail.model_validate(services.model_registry(session).get(version))


@router.post(
    "/{version}/activate",
    response_model=ModelDetail,
    summary="Activate (promote or roll back to) a version",
    responses={
        **_AUTH_ERRORS,
        **_NOT_FOUND,
        409: {"model": ErrorResponse, "description": "Artifact missing or altered."},
    },
)
def activate_model(version: str, _: TrainScope, services: ContainerDep) -> ModelDetail:
    """Make `version` the one every worker serves (within seconds, with no failed request)."""
    with services.sessions() as session:
        try:
            row = services.model_registry(session).activate(version)
        except ArtifactError as exc:
            raise Conflict(str(exc)) from None
        detail = ModelDetail.model_validate(row)
    # This worker switches now; the others at their next registry check.
    services.predictions.sync(wait_for_loads=True)
    return detail
