"""Model registry routes (scope `train`): list, inspect, activate or roll back, and
compare a candidate with the active version on live traffic (shadow evaluation)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.deps import AuditTrailDep, ModelRegistryDep, ShadowServiceDep, TrainScope
from app.core.errors import Conflict
from app.schemas.errors import BearerErrorResponse, ErrorResponse
from app.schemas.shadow import ShadowReport, ShadowRequest
from app.schemas.training import ActiveModel, ModelDetail, ModelList, ModelSummary
from app.services.audit import AuditAction
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


# A body is optional: none means the defaults.
_DEFAULT_SHADOW = ShadowRequest()


@router.post(
    "/{version}/shadow",
    status_code=201,
    response_model=ShadowReport,
    summary="Start shadow evaluation of a candidate version",
    responses={
        **_AUTH_ERRORS,
        **_NOT_FOUND,
        409: {
            "model": ErrorResponse,
            "description": "No active version, the version is the active one, its files fail "
            "their checks, or another run is open.",
        },
    },
)
def start_shadow(
    version: str,
    client: TrainScope,
    shadow: ShadowServiceDep,
    audit: AuditTrailDep,
    response: Response,
    body: ShadowRequest = _DEFAULT_SHADOW,
) -> ShadowReport:
    """Score `sample_rate` of the names served by `POST /predict/` and `/predict/batch`
    with `version` too, off the request path, on every worker and replica.

    Served answers never change. Follow the comparison with `GET`; stop it with
    `DELETE`; activating any version ends it (the report is kept). At most one run
    is open at a time. Audited as `model.shadow_start`, a refusal (409) as a failure.
    """
    sample_rate = body.sample_rate
    with audit.recording(
        actor=client.client_id,
        action=AuditAction.model_shadow_start,
        target=version,
        refusals=(Conflict,),
    ) as event:
        run = shadow.start(version, sample_rate, actor=client.client_id)
        event.detail.update(active=run.active_version, sample_rate=run.sample_rate)
    response.headers["Location"] = f"/models/{version}/shadow"
    return ShadowReport.model_validate(shadow.report(run))


@router.get(
    "/{version}/shadow",
    response_model=ShadowReport,
    summary="A shadow run's report",
    responses={
        **_AUTH_ERRORS,
        404: {"model": ErrorResponse, "description": "The version was never shadowed."},
    },
)
def shadow_report(version: str, _: TrainScope, shadow: ShadowServiceDep) -> ShadowReport:
    """The latest run of `version` (running or ended) since it started: items compared,
    agreement, the largest flips with example names, both versions' score histograms,
    review and out-of-scope rates, and the candidate's scoring time.

    Counts are exact sums over every worker and replica, each of which writes its
    part about once a second. Example names come from every client's traffic.
    """
    return ShadowReport.model_validate(shadow.report(shadow.latest(version)))


@router.delete(
    "/{version}/shadow",
    response_model=ShadowReport,
    summary="Stop shadow evaluation",
    responses={
        **_AUTH_ERRORS,
        404: {"model": ErrorResponse, "description": "No run of this version is running."},
    },
)
def stop_shadow(
    version: str, client: TrainScope, shadow: ShadowServiceDep, audit: AuditTrailDep
) -> ShadowReport:
    """End the running shadow run of `version`; its report is kept. Workers stop
    sampling at their next registry check. Audited as `model.shadow_stop`."""
    run = shadow.stop(version, actor=client.client_id)
    audit.record(actor=client.client_id, action=AuditAction.model_shadow_stop, target=version)
    return ShadowReport.model_validate(shadow.report(run))
