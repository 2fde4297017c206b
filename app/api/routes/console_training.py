"""The console's training pages: upload a CSV, look at it, start a job, follow it.

For people holding `train` (what the JSON training routes ask of a token) or
`admin`. Everything goes through the services behind `POST /datasets/` and
`POST /training/`: the same upload limit and CSV checks, per-client folders and
quota, plan validation (allow-listed algorithms and parameter grid, confined data
path, one open job), and the same audit events, under the signed-in person's
client id. Requests count against the `train` rate limit as the API's do.

The pages work without script; training.js (the only script of these pages)
fills the file input from a dropped file and follows an open job live through
the small JSON route below, which, like the pages, needs the session cookie.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from app.api.deps import (
    AuditTrailDep,
    SettingsDep,
    TrainingJobsDep,
    UploadStoreDep,
)
from app.api.routes.console import (
    ConsoleUserDep,
    form_field,
    message_page,
    page,
    redirect_to,
    refused,
    same_origin,
)
from app.core.config import Settings
from app.core.errors import (
    BackendUnavailable,
    BadRequest,
    Conflict,
    GaroupaError,
    NotFound,
    QuotaExceeded,
    RateLimited,
    Unprocessable,
)
from app.core.scopes import Scope
from app.ml.algorithms import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    MAX_GRID_CANDIDATES,
    TUNABLE_PARAMS,
)
from app.ml.dataset import MIN_ROWS_PER_CLASS, Dataset, DatasetError, parse_csv
from app.schemas.training import TrainingJobOut, TrainingRequest
from app.services.audit import AuditTrail
from app.services.console import ConsoleUser
from app.services.datasets import UPLOAD_FOLDER, client_folder, store_audited
from app.services.training_jobs import StartedJob, TrainingJobService, start_audited

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/console", include_in_schema=False)

# Where the upload form posts: app/main.py gives this path POST /datasets/' body limit.
UPLOAD_PATH = "/console/training/upload"

# An upload page shows every row's count per category, but lists at most this many
# categories and preview rows: a page, not a copy of the file.
SHOWN_CATEGORIES = 200
PREVIEW_ROWS = 20
RECENT_JOBS = 20
SHOWN_CANDIDATES = 10
# A grid of 60 candidates over the allow-listed names fits well inside this.
MAX_PARAMS_CHARS = 4000
# Below this share done, a job's pace says little about the time it has left.
ETA_FROM_PERCENT = 5.0
FINISHED = frozenset({"succeeded", "failed"})
# The names UploadStore.store generates: nothing else is ever read from an upload folder.
_UPLOAD_NAME = re.compile(r"\d{8}-\d{6}-[0-9a-f]{16}\.csv")
_STATUS: tuple[tuple[type[GaroupaError], int], ...] = (
    (BadRequest, 400),
    (NotFound, 404),
    (Conflict, 409),
    (QuotaExceeded, 413),
    (Unprocessable, 422),
    (BackendUnavailable, 503),
)


def may_train(user: ConsoleUser) -> bool:
    """Whether a person may upload data and start jobs: `train`, as the JSON routes
    ask of a token, or `admin`, who sees everything in the console."""
    return user.is_admin or Scope.train in user.scopes


async def _gate(request: Request, user: ConsoleUser | None) -> Response | None:
    """The answer for someone who may not be here (before any body is read), else None."""
    if user is None:
        return redirect_to(request, "/console/sign-in")
    if not may_train(user):
        message = "Training is for clients holding the train or admin scope."
        return message_page(request, user, 403, "Not for this client", message, "/console")
    over = await _over_limit(request, user)
    if over is None:
        return None
    status, message, retry_after = over
    title = "Too many requests" if status == 429 else "Try again shortly"
    response = message_page(request, user, status, title, message, "/console")
    response.headers["Retry-After"] = str(retry_after)
    return response


async def _over_limit(request: Request, user: ConsoleUser) -> tuple[int, str, int] | None:
    """Count the request against the person's `train` limit, as the JSON routes count a
    token's: (status, message, Retry-After seconds) when it may not go ahead."""
    try:
        await request.app.state.runtime.rate_limiter.hit(user.client_id, [Scope.train])
    except RateLimited as exc:
        return 429, exc.message, exc.retry_after
    except BackendUnavailable as exc:
        return 503, exc.message, 5
    return None


@router.get("/training", response_class=HTMLResponse)
async def training_page(
    request: Request, user: ConsoleUserDep, jobs: TrainingJobsDep, settings: SettingsDep
) -> Response:
    """The upload form, a form to retrain without new data, and the recent jobs."""
    refusal = await _gate(request, user)
    if refusal is not None:
        return refusal
    recent = [
        TrainingJobOut.model_validate(j) for j in await run_in_threadpool(jobs.recent, RECENT_JOBS)
    ]
    return page(
        request,
        "training.html",
        user=user,
        title="Training",
        jobs=recent,
        open_job=next((j for j in recent if j.status not in FINISHED), None),
        max_upload_bytes=settings.max_upload_bytes,
        scripts=["training.js"],
        **_form_choices(),
    )


@router.post(UPLOAD_PATH.removeprefix("/console"), response_class=HTMLResponse)
async def upload(
    request: Request,
    user: ConsoleUserDep,
    settings: SettingsDep,
    uploads: UploadStoreDep,
    audit: AuditTrailDep,
) -> Response:
    """Store a CSV as `POST /datasets/` does (audited as `dataset.upload`), then show it."""
    refusal = await _gate(request, user)
    if refusal is not None:
        return refusal
    assert user is not None
    if not same_origin(request):
        return refused(request)
    try:
        # Starlette spools the file to disk past 1 MB; RequestLimits bounds the body.
        form = await request.form(max_files=1, max_fields=8)
    except HTTPException as exc:
        # A malformed multipart body (400), or a streamed one over the limit (413).
        message = str(exc.detail)
        if exc.status_code == 413:
            limit = settings.max_upload_bytes
            message = (
                f"The file is larger than the upload limit of {limit:,} bytes (MAX_UPLOAD_BYTES)."
            )
        return _not_uploaded(request, user, exc.status_code, message)
    try:
        if not user.csrf_matches(form_field(form.get("csrf_token"))):
            return refused(request)
        file = form.get("file")
        if not isinstance(file, UploadFile):
            return _not_uploaded(request, user, 422, "Choose a CSV file to upload.")
        # The person's name for the file labels messages and the audit event only;
        # the stored file gets a generated name.
        label = (file.filename or "the upload")[:200]
        limit = settings.max_upload_bytes
        data = await file.read(limit + 1)
    finally:
        await form.close()
    if len(data) > limit:
        message = f"{label} is larger than the upload limit of {limit:,} bytes (MAX_UPLOAD_BYTES)."
        return _not_uploaded(request, user, 413, message)
    if not data:
        return _not_uploaded(request, user, 422, f"{label} is empty: choose a CSV file to upload.")
    try:
        stored = await run_in_threadpool(store_audited, uploads, audit, user.client_id, data, label)
    except (QuotaExceeded, Unprocessable) as exc:
        return _not_uploaded(request, user, _status_of(exc), exc.message)
    return redirect_to(request, f"/console/training/uploads/{PurePosixPath(stored.data_path).name}")


@router.get("/training/uploads/{name}", response_class=HTMLResponse)
async def upload_page(
    request: Request, name: str, user: ConsoleUserDep, settings: SettingsDep
) -> Response:
    """One of the person's uploads: rows, rows per category, the first rows, the job form."""
    refusal = await _gate(request, user)
    if refusal is not None:
        return refusal
    assert user is not None
    path = _upload_file(settings, user, name)
    if path is None:
        return _no_upload(request, user, name, settings)
    try:
        dataset, size = await run_in_threadpool(_read_upload, path, name, settings.max_upload_bytes)
    except (FileNotFoundError, IsADirectoryError):
        # Never stored, someone else's, or deleted by the retention purge.
        return _no_upload(request, user, name, settings)
    except DatasetError as exc:
        return message_page(request, user, 422, "Unreadable upload", str(exc), "/console/training")
    counts = list(dataset.class_counts.items())
    return page(
        request,
        "training_upload.html",
        user=user,
        title=f"Training data {name}",
        name=name,
        data_path=_data_path(user, name),
        size_bytes=size,
        rows=len(dataset),
        dropped_rows=dataset.dropped_rows,
        categories=len(counts),
        counts=counts[:SHOWN_CATEGORIES],
        small=sum(1 for _, n in counts if n < MIN_ROWS_PER_CLASS),
        min_rows=MIN_ROWS_PER_CLASS,
        preview=list(zip(dataset.texts[:PREVIEW_ROWS], dataset.labels[:PREVIEW_ROWS], strict=True)),
        upload=name,
        **_form_choices(),
    )


@router.post("/training/jobs", response_class=HTMLResponse)
async def start_job(
    request: Request, user: ConsoleUserDep, jobs: TrainingJobsDep, audit: AuditTrailDep
) -> Response:
    """Start a job as `POST /training/` does (audited as `training.start`), then follow it."""
    refusal = await _gate(request, user)
    if refusal is not None:
        return refusal
    assert user is not None
    if not same_origin(request):
        return refused(request)
    form = await request.form(max_files=0, max_fields=16)
    if not user.csrf_matches(form_field(form.get("csrf_token"))):
        return refused(request)
    upload = form_field(form.get("upload"))
    back = (
        f"/console/training/uploads/{upload}"
        if _UPLOAD_NAME.fullmatch(upload)
        else "/console/training"
    )
    body = _training_request(form, user)
    if isinstance(body, str):
        return message_page(request, user, 422, "Not started", body, back)
    try:
        started = await run_in_threadpool(_start_audited, jobs, audit, body, user.client_id)
    except GaroupaError as exc:
        response = message_page(request, user, _status_of(exc), "Not started", exc.message, back)
        if isinstance(exc, BackendUnavailable):
            response.headers["Retry-After"] = "5"
        return response
    return redirect_to(request, f"/console/training/jobs/{started.job.job_id}")


@router.get("/training/jobs/{job_id}", response_class=HTMLResponse)
async def job_page(
    request: Request, job_id: str, user: ConsoleUserDep, jobs: TrainingJobsDep
) -> Response:
    """A job's status, stage and progress; its scores when it succeeded, its error when not."""
    refusal = await _gate(request, user)
    if refusal is not None:
        return refusal
    assert user is not None
    job = await _job(jobs, job_id)
    if job is None:
        message = "No training job has that id."
        return message_page(request, user, 404, "No such job", message, "/console/training")
    candidates = sorted(job.cv_results or [], key=lambda r: r.get("rank", 0))
    response = page(
        request,
        "training_job.html",
        user=user,
        title=f"Training job {job.new_model_version}",
        job=job,
        progress=_progress(job, datetime.now(UTC)),
        candidates=candidates[:SHOWN_CANDIDATES],
        more_candidates=max(len(candidates) - SHOWN_CANDIDATES, 0),
        scripts=["training.js"],
    )
    # The console's policy allows no fetch at all; this page's script reads the job's
    # status from this origin, and nothing else may be reached.
    response.headers["Content-Security-Policy"] += "; connect-src 'self'"
    return response


@router.get("/training/jobs/{job_id}/status")
async def job_status(
    request: Request, job_id: str, user: ConsoleUserDep, jobs: TrainingJobsDep
) -> Response:
    """A job's progress as JSON, for training.js to follow it without reloading."""
    if user is None:
        return _json({"detail": "Sign in to the console first."}, 401)
    if not may_train(user):
        return _json({"detail": "Training is for clients holding the train or admin scope."}, 403)
    over = await _over_limit(request, user)
    if over is not None:
        status, message, retry_after = over
        return _json({"detail": message}, status, retry_after=retry_after)
    job = await _job(jobs, job_id)
    if job is None:
        return _json({"detail": "No training job has that id."}, 404)
    return _json(
        {
            "job_id": job.job_id,
            "status": job.status,
            "stage": job.stage,
            "percent": job.percent,
            "data_rows": job.data_rows,
            **_progress(job, datetime.now(UTC)),
        },
        200,
    )


def _form_choices() -> dict[str, Any]:
    """What the job form offers: the allow-listed algorithms and their tunable parameters."""
    return {
        "algorithms": ALGORITHMS,
        "default_algorithm": DEFAULT_ALGORITHM,
        "tunable": {
            algorithm: [(name, spec.describe()) for name, spec in allowed.items()]
            for algorithm, allowed in TUNABLE_PARAMS.items()
        },
        "max_candidates": MAX_GRID_CANDIDATES,
        "max_params_chars": MAX_PARAMS_CHARS,
    }


def _training_request(form: FormData, user: ConsoleUser) -> TrainingRequest | str:
    """The job form as the JSON API's request (validated by the same schema), or why not."""
    upload = form_field(form.get("upload"))
    if upload and not _UPLOAD_NAME.fullmatch(upload):
        return "That upload is not one this console made."
    raw = form.get("params")
    text = raw.strip() if isinstance(raw, str) else ""
    if len(text) > MAX_PARAMS_CHARS:
        return f"The parameter grid is longer than {MAX_PARAMS_CHARS} characters."
    params: Any = None
    if text:
        try:
            params = json.loads(text)
        except ValueError as exc:
            return f"The parameter grid is not JSON: {exc}."
        except RecursionError:
            # Thousands of nested brackets fit in MAX_PARAMS_CHARS; no grid nests so deep.
            return "The parameter grid nests lists too deeply."
        if not isinstance(params, dict):
            return 'The parameter grid must be a JSON object, such as {"clf__C": [0.3, 1, 3]}.'
    try:
        return TrainingRequest(
            new_data_path=_data_path(user, upload) if upload else None,
            algorithm=form_field(form.get("algorithm")) or DEFAULT_ALGORITHM,
            params=params or None,
            include_base_data=form.get("include_base_data") == "on",
            include_feedback=form.get("include_feedback") == "on",
            activate=form.get("activate") == "on",
        )
    except ValidationError as exc:
        return "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )


def _start_audited(
    jobs: TrainingJobService, audit: AuditTrail, body: TrainingRequest, client_id: str
) -> StartedJob:
    started = start_audited(jobs, audit, body, client_id)
    logger.info(
        "console training job started",
        extra={"job_id": started.job.job_id, "client_id": client_id},
    )
    return started


async def _job(jobs: TrainingJobService, job_id: str) -> TrainingJobOut | None:
    # Job ids are UUIDs; anything longer is no job, and not worth a query.
    if len(job_id) > 36:
        return None
    try:
        return TrainingJobOut.model_validate(await run_in_threadpool(jobs.get, job_id))
    except NotFound:
        return None


def _progress(job: TrainingJobOut, now: datetime) -> dict[str, Any]:
    """Whether the job is done, how long it has run and, roughly, how long it has left.

    The time left assumes the rest goes at the pace so far: of the counted fits
    when the algorithm counts them (app/ml/parallel.py), else of the percent,
    which moves by stage weights measured on the shipped data
    (app/ml/training.py). Either way it is an estimate, shown as one.
    """
    finished = job.status in FINISHED
    elapsed: float | None = None
    if job.started_at is not None:
        elapsed = max(((job.finished_at or now) - job.started_at).total_seconds(), 0.0)
    eta: float | None = None
    if not finished and job.eta_seconds is not None:
        # Counted fits are a better measure than stage weights: they are most of the work.
        eta = job.eta_seconds
    elif not finished and elapsed is not None and ETA_FROM_PERCENT <= job.percent < 100:
        eta = elapsed * (100 - job.percent) / job.percent
    fits = None
    if job.fits_total:
        fits = f"{job.fits_done or 0:,} of {job.fits_total:,}"
    return {
        "finished": finished,
        "elapsed": None if elapsed is None else _duration(elapsed),
        "eta": None if eta is None else _duration(eta),
        "fits": fits,
    }


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _data_path(user: ConsoleUser, name: str) -> str:
    """An upload's path inside DATA_DIR, as `POST /datasets/` returns it."""
    return f"{UPLOAD_FOLDER}/{client_folder(user.client_id)}/{name}"


def _upload_file(settings: Settings, user: ConsoleUser, name: str) -> Path | None:
    """The person's own upload of that generated name; None for any other name."""
    if not _UPLOAD_NAME.fullmatch(name):
        return None
    return settings.data_dir / _data_path(user, name)


def _read_upload(path: Path, name: str, limit: int) -> tuple[Dataset, int]:
    """The upload's rows, as a job will read them, and its size in bytes."""
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise DatasetError(f"{name} is larger than the upload limit of {limit:,} bytes")
    return parse_csv(data, name), len(data)


def _status_of(exc: GaroupaError) -> int:
    return next((code for kind, code in _STATUS if isinstance(exc, kind)), 422)


def _not_uploaded(request: Request, user: ConsoleUser, status: int, message: str) -> Response:
    return message_page(request, user, status, "Not uploaded", message, "/console/training")


def _no_upload(request: Request, user: ConsoleUser, name: str, settings: Settings) -> Response:
    message = (
        f"You have no upload called {name[:80]!r}. Uploads are deleted "
        f"{settings.upload_retention_days:g} days after they are stored."
    )
    return message_page(request, user, 404, "No such upload", message, "/console/training")


def _json(content: dict[str, Any], status: int, retry_after: int | None = None) -> Response:
    response = JSONResponse(content, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response
