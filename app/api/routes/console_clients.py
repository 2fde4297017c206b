"""The console's clients and audit pages (admin only).

The same ClientService as the admin API and manage_clients.py, acting as the
signed-in person's client, so every change is audited under its id and the
registry's rules hold (an admin cannot deactivate or demote itself, nor remove
the last active admin). Each change is a form POST from this origin carrying
the session's CSRF token; a new or rotated secret is shown once, on the page
that answers the form, never again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from app.api.deps import AuditTrailDep, ClientServiceDep
from app.api.routes.console import (
    ConsoleUserDep,
    form_field,
    message_page,
    page,
    redirect_to,
    refused,
    same_origin,
)
from app.core.errors import GaroupaError
from app.core.scopes import Scope
from app.crud.audit import AuditFilter
from app.services.audit import Actor
from app.services.clients import AdminLockout, ClientIdTaken, UnknownClient
from app.services.console import ConsoleUser

router = APIRouter(prefix="/console", include_in_schema=False)

AUDIT_PAGE_EVENTS = 50


@router.get("/clients", response_class=HTMLResponse)
async def clients_page(
    request: Request, user: ConsoleUserDep, clients: ClientServiceDep, audit: AuditTrailDep
) -> Response:
    """Every client with its usage, the forms that change them, and the latest audit events."""
    if user is None:
        return redirect_to(request, "/console/sign-in")
    if not user.is_admin:
        return _admins_only(request, user)
    overview = await run_in_threadpool(clients.overview)
    events = await run_in_threadpool(audit.page, AuditFilter(), limit=10)
    return page(
        request,
        "clients.html",
        user=user,
        title="Clients",
        clients=overview,
        events=events.events,
        scopes=[s.value for s in Scope],
    )


@router.post("/clients", response_class=HTMLResponse)
async def create_client(
    request: Request, user: ConsoleUserDep, clients: ClientServiceDep
) -> Response:
    """Register a client; its secret is shown once on the answer."""
    form = await _checked_form(request, user)
    if isinstance(form, Response):
        return form
    assert user is not None
    client_id = form_field(form.get("client_id")).strip() or None
    scopes = " ".join(s for s in (form_field(v) for v in form.getlist("scopes")) if s)

    def register() -> tuple[str, str]:
        record, secret = clients.register(
            name=form_field(form.get("name")),
            client_id=client_id,
            scopes=scopes,
            actor=Actor.client(user.client_id),
        )
        return record.client_id, secret

    return await _changed(request, user, register, created=True)


@router.post("/clients/{client_id:path}/rotate-secret", response_class=HTMLResponse)
async def rotate_secret(
    request: Request, client_id: str, user: ConsoleUserDep, clients: ClientServiceDep
) -> Response:
    """A new secret for a client, shown once; its tokens and sessions end."""
    form = await _checked_form(request, user)
    if isinstance(form, Response):
        return form
    assert user is not None

    def rotate() -> tuple[str, str]:
        return client_id, clients.rotate_secret(client_id, actor=Actor.client(user.client_id))

    return await _changed(request, user, rotate, created=False)


@router.post("/clients/{client_id:path}/active", response_class=HTMLResponse)
async def set_active(
    request: Request, client_id: str, user: ConsoleUserDep, clients: ClientServiceDep
) -> Response:
    """Activate (`active=true`) or deactivate (`active=false`) a client."""
    form = await _checked_form(request, user)
    if isinstance(form, Response):
        return form
    assert user is not None
    active = form_field(form.get("active"))
    if active not in ("true", "false"):
        return _problem(request, user, 422, "active must be true or false.")
    return await _updated(
        request,
        user,
        lambda: clients.set_active(
            client_id, active=active == "true", actor=Actor.client(user.client_id)
        ),
    )


@router.post("/clients/{client_id:path}/scopes", response_class=HTMLResponse)
async def set_scopes(
    request: Request, client_id: str, user: ConsoleUserDep, clients: ClientServiceDep
) -> Response:
    """Replace a client's scopes (its tokens and sessions end)."""
    form = await _checked_form(request, user)
    if isinstance(form, Response):
        return form
    assert user is not None
    scopes = " ".join(s for s in (form_field(v) for v in form.getlist("scopes")) if s)
    return await _updated(
        request,
        user,
        lambda: clients.set_scopes(client_id, scopes, actor=Actor.client(user.client_id)),
    )


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    user: ConsoleUserDep,
    audit: AuditTrailDep,
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=160)] = None,
    target: Annotated[str | None, Query(max_length=300)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The audit trail, newest first, filterable by action, actor and target."""
    if user is None:
        return redirect_to(request, "/console/sign-in")
    if not user.is_admin:
        return _admins_only(request, user)
    where = AuditFilter(actor=actor or None, action=action or None, target=target or None)
    try:
        events = await run_in_threadpool(audit.page, where, limit=AUDIT_PAGE_EVENTS, cursor=cursor)
    except ValueError:
        return _problem(request, user, 422, "That page link is not one this console made.")
    return page(
        request,
        "audit.html",
        user=user,
        title="Audit",
        events=events.events,
        next_cursor=events.next_cursor,
        filters={"action": action or "", "actor": actor or "", "target": target or ""},
    )


async def _checked_form(request: Request, user: ConsoleUser | None) -> FormData | Response:
    """The form of an admin's change, or the page refusing it (before reading a body
    from anyone who is not a signed-in admin)."""
    if user is None:
        return redirect_to(request, "/console/sign-in")
    if not user.is_admin:
        return _admins_only(request, user)
    if not same_origin(request):
        return refused(request)
    form = await request.form(max_files=0, max_fields=16)
    if not user.csrf_matches(form_field(form.get("csrf_token"))):
        return refused(request)
    return form


async def _changed(
    request: Request,
    user: ConsoleUser,
    change: Callable[[], tuple[str, str]],
    *,
    created: bool,
) -> Response:
    """Run a change that makes a secret, and show that secret once."""
    try:
        client_id, secret = await run_in_threadpool(change)
    except GaroupaError as exc:
        return _failed(request, user, exc)
    return page(
        request,
        "secret.html",
        user=user,
        title="Client created" if created else "Secret rotated",
        client_id=client_id,
        secret=secret,
        created=created,
    )


async def _updated(request: Request, user: ConsoleUser, change: Callable[[], object]) -> Response:
    try:
        await run_in_threadpool(change)
    except GaroupaError as exc:
        return _failed(request, user, exc)
    return redirect_to(request, "/console/clients")


def _failed(request: Request, user: ConsoleUser, exc: GaroupaError) -> Response:
    if isinstance(exc, UnknownClient):
        return _problem(request, user, 404, "No client has that id.")
    if isinstance(exc, (ClientIdTaken, AdminLockout)):
        return _problem(request, user, 409, str(exc))
    # The registry's own words on what it refused (a name, id, secret or scope list).
    return _problem(request, user, 422, str(exc))


def _problem(request: Request, user: ConsoleUser, status: int, message: str) -> Response:
    return message_page(request, user, status, "Not changed", message, "/console/clients")


def _admins_only(request: Request, user: ConsoleUser) -> Response:
    message = "Clients and the audit trail are for clients holding the admin scope."
    return message_page(request, user, 403, "Admins only", message, "/console")
