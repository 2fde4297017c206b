"""Dataset upload (scope `train`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, UploadFile
from starlette.concurrency import run_in_threadpool

from app.api.deps import AuditTrailDep, SettingsDep, TrainScope, UploadStoreDep
from app.api.middleware import BodyTooLarge
from app.schemas.errors import BearerErrorResponse, ErrorResponse
from app.schemas.training import DatasetOut
from app.services.datasets import store_audited

router = APIRouter(prefix="/datasets", tags=["training"])


@router.post(
    "/",
    status_code=201,
    response_model=DatasetOut,
    summary="Upload a training CSV",
    responses={
        401: {"model": BearerErrorResponse, "description": "Missing, invalid or revoked token."},
        403: {"model": BearerErrorResponse, "description": "Token lacks the `train` scope."},
        413: {
            "model": ErrorResponse,
            "description": "Larger than MAX_UPLOAD_BYTES, or the client's upload quota "
            "(UPLOAD_QUOTA_BYTES, UPLOAD_QUOTA_FILES) is used up.",
        },
        422: {"description": "Not UTF-8 CSV, wrong columns, no usable rows, or one category."},
    },
)
@router.post("", status_code=201, response_model=DatasetOut, include_in_schema=False)
async def upload_dataset(
    file: Annotated[UploadFile, File(description="CSV: product_name,category (UTF-8).")],
    client: TrainScope,
    settings: SettingsDep,
    uploads: UploadStoreDep,
    audit: AuditTrailDep,
) -> DatasetOut:
    """Store a CSV under the data directory; pass the returned `data_path` to POST /training/.

    Each client's uploads count against its quota and are deleted after
    UPLOAD_RETENTION_DAYS. Whether every category has enough rows to train on is
    checked at POST /training/, on the combined data. Audited as `dataset.upload` (a
    refusal over the quota as a failure).
    """
    limit = settings.max_upload_bytes
    # The middleware bounds the whole multipart body; this bounds the file exactly.
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise BodyTooLarge(limit)
    stored = await run_in_threadpool(
        store_audited, uploads, audit, client.client_id, data, file.filename
    )
    return DatasetOut.model_validate(stored)
