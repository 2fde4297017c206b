"""Model registry routes (scope `train`): list, inspect, activate or roll back."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import AuditTrailDep, ModelRegistryDep, TrainScope
from app.schemas.errors import BearerErrorResponse, ErrorResponse
from app.schemas.training import ActiveModel, ModelDetail, ModelList, ModelSummary
from app.services.models import activate_audited

router = APIRouter(prefix="/models", tags=["models"])

_AUTH_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": BearerErrorResponse, "description": "Missing, invalid or revoked token."},
    403: {"model": BearerErrorResponse, "description": "Token lacks the `train` scope."},
}
_NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "Unknown version."}
}


@router.get("/", response_model=ModelList, summary="List model versions", responses=_AUTH_ERRORS)
def list_models(_: TrainScope, registry: ModelRegistryDep) -> ModelList:
    """Every version, newest first, with its headline metrics."""
    return ModelList(models=[ModelSummary.model_validate(r) for r in registry.list()])


@router.get(
    "/active", response_model=ActiveModel, summary="The active model", responses=_AUTH_ERRORS
)
def active_model(_: TrainScope, registry: ModelRegistryDep) -> ActiveModel:
    """Whether a model is trained, and its version, algorithm, best params and metrics."""
    return registry.active_model()


@router.get(
    "/{version}",
    response_model=ModelDetail,
    summary="One model version in full",
    responses={**_AUTH_ERRORS, **_NOT_FOUND},
)
def get_model(version: str, _: TrainScope, registry: ModelRegistryDep) -> ModelDetail:
    """Metrics including per-class scores and the confusion matrix, data provenance, hashes."""
    return ModelDetail.model_validate(registry.get(version))


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
def activate_model(
    version: str, client: TrainScope, registry: ModelRegistryDep, audit: AuditTrailDep
) -> ModelDetail:
    """Make `version` the one every worker serves (within seconds, with no failed request).

    Audited as `model.activate`, a refusal (409) as a failure.
    """
    row = activate_audited(registry, audit, version, actor=client.client_id)
    return ModelDetail.model_validate(row)
