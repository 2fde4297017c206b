"""Retraining routes (scope `train`): start a job, follow it, list jobs, cancel one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.api.deps import AuditTrailDep, TrainingJobsDep, TrainScope
from app.schemas.errors import BearerErrorResponse, ErrorResponse
from app.schemas.training import (
    TrainingAccepted,
    TrainingJobList,
    TrainingJobOut,
    TrainingRequest,
)
from app.services.training_jobs import start_audited

router = APIRouter(prefix="/training", tags=["training"])

_AUTH_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": BearerErrorResponse, "description": "Missing, invalid or revoked token."},
    403: {"model": BearerErrorResponse, "description": "Token lacks the `train` scope."},
}


@router.post(
    "/",
    status_code=202,
    response_model=TrainingAccepted,
    summary="Start a training job",
    responses={
        **_AUTH_ERRORS,
        400: {"model": ErrorResponse, "description": "Path outside the data directory."},
        404: {"model": ErrorResponse, "description": "Data file not found."},
        409: {"model": ErrorResponse, "description": "A job is already queued or running."},
        422: {
            "description": "Bad options, a parameter outside the allow-list, unreadable CSV, "
            "wrong columns or too little data."
        },
    },
)
@router.post("", status_code=202, response_model=TrainingAccepted, include_in_schema=False)
def start_training(
    body: TrainingRequest,
    client: TrainScope,
    jobs: TrainingJobsDep,
    audit: AuditTrailDep,
    response: Response,
) -> TrainingAccepted:
    """Validate the request and its data, then train in a separate process.

    The data is the CSV at `new_data_path` plus, by default, the rows the active
    version was trained on and every stored feedback label (later rows win for a
    repeated name). The combined data must allow a stratified split (2+
    categories with 5+ rows each; smaller categories are left out with a
    warning). Poll `status_url`; the new version serves on every worker within
    seconds of the job succeeding when `activate` is true and it is not worse
    than the active version (MIN_MACRO_F1, MAX_F1_DROP). Audited as `training.start`
    (a 409 as a failure).
    """
    started = start_audited(jobs, audit, body, client.client_id)
    job = started.job
    status_url = f"/training/{job.job_id}"
    response.headers["Location"] = status_url
    return TrainingAccepted(
        message="Training job started successfully.",
        new_model_version=job.new_model_version,
        data_path=job.data_path,
        job_id=job.job_id,
        status_url=status_url,
        warnings=started.warnings,
    )


@router.get(
    "/",
    response_model=TrainingJobList,
    summary="List recent training jobs",
    responses=_AUTH_ERRORS,
)
def list_jobs(
    _: TrainScope,
    jobs: TrainingJobsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> TrainingJobList:
    """The most recent jobs, newest first."""
    return TrainingJobList(jobs=[TrainingJobOut.model_validate(j) for j in jobs.recent(limit)])


@router.get(
    "/{job_id}",
    response_model=TrainingJobOut,
    summary="A training job's status",
    responses={**_AUTH_ERRORS, 404: {"model": ErrorResponse, "description": "Unknown job."}},
)
def get_job(job_id: str, _: TrainScope, jobs: TrainingJobsDep) -> TrainingJobOut:
    """Status, stage and percent, timings, metrics, best params, and the error if it failed."""
    return TrainingJobOut.model_validate(jobs.get(job_id))


@router.delete(
    "/{job_id}",
    response_model=TrainingJobOut,
    summary="Cancel a queued or running training job",
    responses={
        **_AUTH_ERRORS,
        404: {"model": ErrorResponse, "description": "Unknown job."},
        409: {"model": ErrorResponse, "description": "The job has already finished."},
    },
)
def cancel_job(job_id: str, client: TrainScope, jobs: TrainingJobsDep) -> TrainingJobOut:
    """Stop a job: it fails with `cancelled by <client_id>`; the active model keeps serving.

    A job running on this host is killed at once; one on another replica stops
    at its next heartbeat (within seconds).
    """
    return TrainingJobOut.model_validate(jobs.cancel(job_id, by=client.client_id))
