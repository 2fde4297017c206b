"""Bulk scoring routes (scope `predict`): score a whole CSV in a job of its own.

A job is its creator's alone: for any other client, whatever its scopes, it does
not exist (404), so job ids cannot be probed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile
from fastapi.responses import FileResponse

from app.api.deps import BulkJobsDep, PredictScope, SettingsDep
from app.api.middleware import BodyTooLarge
from app.schemas.bulk import BULK_PATH, BulkJobAccepted, BulkJobOut, status_url
from app.schemas.errors import BearerErrorResponse, ErrorResponse

router = APIRouter(prefix=BULK_PATH, tags=["predictions"])

_AUTH_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": BearerErrorResponse, "description": "Missing, invalid or revoked token."},
    403: {"model": BearerErrorResponse, "description": "Token lacks the `predict` scope."},
}
_UNKNOWN: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "No such job of this client."}
}
# Model versions as the registry names them; anything else is refused before any lookup.
_VERSION_PATTERN = r"^v\d{1,9}\.\d{1,9}\.\d{1,9}$"


@router.post(
    "",
    status_code=202,
    response_model=BulkJobAccepted,
    summary="Start a bulk scoring job",
    responses={
        **_AUTH_ERRORS,
        400: {"model": ErrorResponse, "description": "`data_path` outside the data directory."},
        404: {"model": ErrorResponse, "description": "Unknown data file or model version."},
        409: {
            "model": ErrorResponse,
            "description": "This client (MAX_BULK_JOBS_PER_CLIENT) or the service "
            "(MAX_BULK_JOBS) already has its limit of jobs queued or running.",
        },
        413: {"model": ErrorResponse, "description": "Upload larger than MAX_BULK_UPLOAD_BYTES."},
        422: {"description": "Neither or both of `file` and `data_path`, or a bad version."},
        503: {"model": ErrorResponse, "description": "No active model, or no process started."},
    },
)
def start_bulk_job(
    client: PredictScope,
    jobs: BulkJobsDep,
    settings: SettingsDep,
    response: Response,
    file: Annotated[
        UploadFile | None,
        File(description="CSV of names: a `product_name` column, or the first column."),
    ] = None,
    data_path: Annotated[
        str | None,
        Form(min_length=1, max_length=500, description="A CSV inside the data directory."),
    ] = None,
    model_version: Annotated[
        str | None,
        Form(pattern=_VERSION_PATTERN, description="Version to score with (default: active)."),
    ] = None,
) -> BulkJobAccepted:
    """Score every row of a CSV (an upload, or `data_path`) in a process of its own.

    Poll `status_url` for progress; the result, `GET …/result.csv`, has one row per
    input row, in order, as `/predict/batch` answers it. Bad rows (empty, too
    long, not UTF-8) get an `error` cell and are counted; they never fail the job.
    """
    if file is not None and file.size is not None and file.size > settings.max_bulk_upload_bytes:
        raise BodyTooLarge(settings.max_bulk_upload_bytes)
    job = jobs.submit(
        client.client_id,
        upload=None if file is None else file.file,
        data_path=data_path,
        version=model_version,
    )
    response.headers["Location"] = status_url(job.job_id)
    return BulkJobAccepted(
        job_id=job.job_id,
        status=job.status,
        model_version=job.model_version,
        status_url=status_url(job.job_id),
    )


@router.get(
    "/{job_id}",
    response_model=BulkJobOut,
    summary="A bulk job's status and progress",
    responses={**_AUTH_ERRORS, **_UNKNOWN},
)
def get_bulk_job(job_id: str, client: PredictScope, jobs: BulkJobsDep) -> BulkJobOut:
    """Status, rows done, rows/s and ETA while it runs, the error if it failed."""
    return BulkJobOut.model_validate(jobs.get(client.client_id, job_id))


@router.get(
    "/{job_id}/result.csv",
    response_class=FileResponse,
    summary="A bulk job's result",
    responses={
        **_AUTH_ERRORS,
        200: {"content": {"text/csv": {}}, "description": "The scored rows, in input order."},
        404: {"model": ErrorResponse, "description": "No such job, or its result expired."},
        409: {"model": ErrorResponse, "description": "The job has not succeeded."},
    },
)
def get_bulk_result(job_id: str, client: PredictScope, jobs: BulkJobsDep) -> FileResponse:
    """The complete result CSV: `row, product_name, predicted_category, prediction_score,
    needs_review, in_scope, top2_category, top2_score, top3_category, top3_score, error`.

    Served only once the job has succeeded, so a partial result is never served.
    """
    path = jobs.result(client.client_id, job_id)
    return FileResponse(
        path,
        media_type="text/csv; charset=utf-8",
        filename=f"bulk-{path.parent.name}.csv",
        headers={"Cache-Control": "no-store"},
    )


@router.delete(
    "/{job_id}",
    response_model=BulkJobOut,
    summary="Cancel a queued or running bulk job",
    responses={
        **_AUTH_ERRORS,
        **_UNKNOWN,
        409: {"model": ErrorResponse, "description": "The job has already finished."},
    },
)
def cancel_bulk_job(job_id: str, client: PredictScope, jobs: BulkJobsDep) -> BulkJobOut:
    """Stop a job: it fails with `cancelled by <client_id>` and has no result."""
    return BulkJobOut.model_validate(jobs.cancel(client.client_id, job_id))
