"""Admin routes (scope `admin`): the client registry with its usage, and the audit trail."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Response

from app.api.deps import AdminScope, AuditTrailDep, ClientServiceDep, no_store
from app.schemas.admin import (
    AdminClientResponse,
    AuditEventResponse,
    AuditPageResponse,
    AuditQuery,
    ClientCreatedResponse,
    ClientCreateRequest,
    ClientListResponse,
    ClientResponse,
    ClientUpdateRequest,
    SecretRotatedResponse,
)
from app.schemas.errors import BearerErrorResponse, ErrorResponse
from app.services.audit import Actor
from app.services.clients import MAX_CLIENT_ID_LENGTH

router = APIRouter(prefix="/admin", tags=["admin"])


# `:path` in the routes: a client id may contain "/" (sent percent-encoded).
ClientIdPath = Annotated[
    str,
    Path(min_length=1, max_length=MAX_CLIENT_ID_LENGTH, description="The client's id."),
]

_401 = {"model": BearerErrorResponse, "description": "Missing, invalid or revoked token."}
_403 = {"model": BearerErrorResponse, "description": "Token lacks the `admin` scope."}
_404 = {"model": ErrorResponse, "description": "No client with this id."}
_409 = {
    "model": ErrorResponse,
    "description": "Refused: it would leave no active client holding `admin`, or the "
    "calling client would deactivate, delete or demote itself.",
}
_422_PATH = {"description": "`client_id` longer than 128 characters."}
_429 = {"description": "Over RATE_LIMIT_ADMIN; see Retry-After."}
_AUTH: dict[int | str, dict[str, Any]] = {401: _401, 403: _403, 429: _429}


@router.get(
    "/clients",
    response_model=ClientListResponse,
    summary="List clients with their usage",
    responses=_AUTH,
)
def list_clients(_: AdminScope, clients: ClientServiceDep) -> ClientListResponse:
    """Every client, oldest first, with its requests and predictions over the last 24 hours
    and 30 days (from the prediction log) and when it was last seen."""
    return ClientListResponse(
        clients=[AdminClientResponse.from_overview(o) for o in clients.overview()]
    )


@router.post(
    "/clients",
    status_code=201,
    response_model=ClientCreatedResponse,
    summary="Register a client",
    dependencies=[Depends(no_store)],
    responses={
        **_AUTH,
        409: {"model": ErrorResponse, "description": "A client with this id exists."},
        422: {
            "description": "Unknown field or scope, a name or id too long or with control "
            "characters."
        },
    },
)
def create_client(
    body: ClientCreateRequest, admin: AdminScope, clients: ClientServiceDep, response: Response
) -> ClientCreatedResponse:
    """Register a client with a generated secret, returned this once (`Cache-Control:
    no-store`). Audited as `client.create`."""
    record, secret = clients.register(
        name=body.name,
        client_id=body.client_id,
        scopes=body.scopes,
        actor=Actor.client(admin.client_id),
    )
    response.headers["Location"] = f"/admin/clients/{quote(record.client_id, safe='')}"
    return ClientCreatedResponse(
        **ClientResponse.from_record(record).model_dump(), client_secret=secret
    )


@router.get(
    "/clients/{client_id:path}",
    response_model=AdminClientResponse,
    summary="One client with its usage",
    responses={**_AUTH, 404: _404, 422: _422_PATH},
)
def get_client(
    client_id: ClientIdPath, _: AdminScope, clients: ClientServiceDep
) -> AdminClientResponse:
    """The client as `GET /admin/clients` lists it."""
    return AdminClientResponse.from_overview(clients.overview_of(client_id))


@router.patch(
    "/clients/{client_id:path}",
    response_model=ClientResponse,
    summary="Rename, re-scope, activate or deactivate a client",
    responses={
        **_AUTH,
        404: _404,
        409: _409,
        422: {
            "description": "No field given, an unknown field or scope, a bad name, or a "
            "`client_id` longer than 128 characters."
        },
    },
)
def update_client(
    client_id: ClientIdPath,
    body: ClientUpdateRequest,
    admin: AdminScope,
    clients: ClientServiceDep,
) -> ClientResponse:
    """Change any of `name`, `scopes` and `active` in one transaction. New scopes and
    deactivation revoke the client's outstanding tokens on every worker within seconds.
    Each change is audited (`client.update`, `client.set_scopes`, `client.activate`,
    `client.deactivate`); a refusal (409) is audited as a failure."""
    record = clients.update(
        client_id,
        name=body.name,
        scopes=body.scopes,
        active=body.active,
        actor=Actor.client(admin.client_id),
    )
    return ClientResponse.from_record(record)


@router.delete(
    "/clients/{client_id:path}",
    status_code=204,
    response_class=Response,
    summary="Delete a client",
    responses={**_AUTH, 404: _404, 409: _409, 422: _422_PATH},
)
def delete_client(client_id: ClientIdPath, admin: AdminScope, clients: ClientServiceDep) -> None:
    """Remove the client; its outstanding tokens stop working within seconds. Audited as
    `client.delete`."""
    clients.delete(client_id, actor=Actor.client(admin.client_id))


@router.post(
    "/clients/{client_id:path}/rotate-secret",
    response_model=SecretRotatedResponse,
    summary="Replace a client's secret",
    dependencies=[Depends(no_store)],
    responses={**_AUTH, 404: _404, 422: _422_PATH},
)
def rotate_secret(
    client_id: ClientIdPath, admin: AdminScope, clients: ClientServiceDep
) -> SecretRotatedResponse:
    """Generate a new secret, returned this once (`Cache-Control: no-store`); the old one
    and every token issued with it stop working. Audited as `client.rotate_secret`."""
    secret = clients.rotate_secret(client_id, actor=Actor.client(admin.client_id))
    return SecretRotatedResponse(client_id=client_id, client_secret=secret)


@router.get(
    "/audit",
    response_model=AuditPageResponse,
    summary="Read the audit trail",
    responses={
        **_AUTH,
        422: {
            "description": "A limit outside 1-500, a cursor this route did not issue, a time "
            "without a time zone, an unknown action or outcome, or an unknown parameter."
        },
    },
)
def read_audit(
    query: Annotated[AuditQuery, Query()], _: AdminScope, audit: AuditTrailDep
) -> AuditPageResponse:
    """Recorded changes to clients, model activations, training starts and dataset uploads,
    newest first, one page at a time: pass `next_cursor` back as `cursor` until it is null."""
    page = audit.page(query.to_filter(), limit=query.limit, cursor=query.cursor)
    return AuditPageResponse(
        events=[AuditEventResponse.model_validate(e) for e in page.events],
        next_cursor=page.next_cursor,
    )
