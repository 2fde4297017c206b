"""The prediction log read back: a client's own history, statistics and CSV export
(scope `predict`), and every client's for admins (scope `admin`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse

from app.api.deps import AdminScope, AuditTrailDep, PredictionHistoryDep, PredictScope
from app.schemas.errors import BearerErrorResponse
from app.schemas.history import (
    AdminHistoryQuery,
    AdminLogFilters,
    AdminStats,
    HistoryPage,
    HistoryQuery,
    LogFilters,
    PredictionStats,
)
from app.services.audit import AuditAction
from app.services.prediction_history import BadQuery, log_filter

router = APIRouter(prefix="/predictions", tags=["predictions"])
admin_router = APIRouter(prefix="/admin", tags=["admin"])

_T = TypeVar("_T")
_CSV = "text/csv; charset=utf-8; header=present"
_401 = {"model": BearerErrorResponse, "description": "Missing, invalid or revoked token."}
_422 = {"description": "A query parameter is malformed or unusable; `detail` names it."}
_429 = {"description": "Over the scope's rate limit; see Retry-After."}


def _responses(scope: str) -> dict[int | str, dict[str, Any]]:
    return {
        401: _401,
        403: {"model": BearerErrorResponse, "description": f"Token lacks `{scope}`."},
        422: _422,
        429: _429,
    }


def _csv_responses(scope: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "RFC 4180 CSV with a header row, newest first.",
        },
        **_responses(scope),
    }


def _answering_422(call: Callable[[], _T]) -> _T:
    # Answered like FastAPI's own 422 for a malformed parameter, naming it.
    try:
        return call()
    except BadQuery as exc:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", exc.field), "msg": str(exc), "input": None}]
        ) from None


def _private(response: Response) -> None:
    # Product names can be confidential to the client that sent them.
    response.headers["Cache-Control"] = "no-store"


def _csv_download(body: Iterator[bytes], filename: str) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type=_CSV,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get(
    "/history",
    response_model=HistoryPage,
    summary="Your predictions, newest first",
    responses=_responses("predict"),
)
def history(
    query: Annotated[HistoryQuery, Query()],
    client: PredictScope,
    log: PredictionHistoryDep,
    response: Response,
) -> HistoryPage:
    """The caller's own logged predictions, newest first, a page at a time.

    Pass `next_cursor` back as `cursor` for the next page. Filters: `since`
    (inclusive), `until` (exclusive), `category`, `model_version`, `needs_review`.
    """
    _private(response)
    where = log_filter(query, client.client_id)
    return _answering_422(lambda: log.page(where, limit=query.limit, cursor=query.cursor))


@router.get(
    "/stats",
    response_model=PredictionStats,
    summary="Statistics of your predictions",
    responses=_responses("predict"),
)
def stats(
    query: Annotated[LogFilters, Query()],
    client: PredictScope,
    log: PredictionHistoryDep,
    response: Response,
) -> PredictionStats:
    """Counts per UTC day, category and model version, mean score, review and
    out-of-scope rates, over `since`..`until` (default: the last 30 days; at most 400)."""
    _private(response)
    where = log_filter(query, client.client_id)
    return _answering_422(lambda: log.stats(where))


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    summary="Your predictions as CSV",
    responses=_csv_responses("predict"),
)
def export(
    query: Annotated[LogFilters, Query()], client: PredictScope, log: PredictionHistoryDep
) -> StreamingResponse:
    """The caller's predictions matching the filters (default: the last 30 days) as
    streamed RFC 4180 CSV. Cells starting with `=`, `+`, `-`, `@`, tab or carriage
    return get a leading `'`, so a spreadsheet shows them as text, never as formulas."""
    where = log_filter(query, client.client_id)
    body = _answering_422(lambda: _started(log.export_csv(where)))
    return _csv_download(body, "predictions.csv")


@admin_router.get(
    "/predictions",
    response_model=HistoryPage,
    summary="Every client's predictions, newest first",
    responses=_responses("admin"),
)
def admin_history(
    query: Annotated[AdminHistoryQuery, Query()],
    _: AdminScope,
    log: PredictionHistoryDep,
    response: Response,
) -> HistoryPage:
    """Any client's logged predictions (all, or `client_id`'s), with the history filters."""
    _private(response)
    where = log_filter(query, query.client_id)
    return _answering_422(lambda: log.page(where, limit=query.limit, cursor=query.cursor))


@admin_router.get(
    "/predictions/export.csv",
    response_class=StreamingResponse,
    summary="Every client's predictions as CSV",
    responses=_csv_responses("admin"),
)
def admin_export(
    query: Annotated[AdminLogFilters, Query()],
    admin: AdminScope,
    log: PredictionHistoryDep,
    audit: AuditTrailDep,
) -> StreamingResponse:
    """Any client's predictions as streamed CSV, with the history filters (default: the
    last 30 days) and the same formula neutralisation. Each export is audited."""
    where = log_filter(query, query.client_id)
    body = _answering_422(lambda: _started(log.export_csv(where)))
    # Recorded once the export is sure to start: whose rows left, and which ones.
    audit.record(
        actor=admin.client_id,
        action=AuditAction.admin_export,
        target=f"predictions:{query.client_id or '*'}",
        detail=query.model_dump(mode="json", exclude_none=True),
    )
    return _csv_download(body, "predictions-all.csv")


@admin_router.get(
    "/stats",
    response_model=AdminStats,
    summary="Service-wide statistics",
    responses=_responses("admin"),
)
def admin_stats(
    query: Annotated[AdminLogFilters, Query()],
    _: AdminScope,
    log: PredictionHistoryDep,
    response: Response,
) -> AdminStats:
    """Predictions of every client over the range (default: the last 30 days) per day,
    category, model version and client; training jobs by status; the active version."""
    _private(response)
    where = log_filter(query, query.client_id)
    return _answering_422(lambda: log.overview(where))


def _started(chunks: Iterator[bytes]) -> Iterator[bytes]:
    # Produce the header row now: a bad range is raised here, while a 422 can still
    # be sent, instead of after the 200 has gone out.
    first = next(chunks)

    def rest() -> Iterator[bytes]:
        yield first
        yield from chunks

    return rest()
