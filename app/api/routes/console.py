"""The operator's console at /console: server-rendered pages for people.

People sign in with a client id and secret of the registry (a client per
person, with `review` or `admin`; see app/services/console.py). Pages are HTML
rendered here, with no inline script and no asset from another origin (two
pages add a script file of this app: review keys, training progress); every POST must
come from this origin (Origin and Sec-Fetch-Site) and, once signed in, carry the
session's CSRF token. Not in the OpenAPI schema: machines use the JSON API.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from app.api.deps import (
    ClientServiceDep,
    SessionDep,
    SettingsDep,
    client_address,
)
from app.core.errors import InvalidClient, TemporarilyUnavailable, TooManyAttempts
from app.services.console import ConsoleSessions, ConsoleUser, NotForConsole

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/console", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parents[2] / "templates")

COOKIE = "garoupa_console"
# Forms people post without a bearer token (BearerGate lets them through; they are
# authenticated by the secret, or by the session cookie and CSRF token, instead).
FORM_PREFIX = "/console/"
# Longest client id and secret the sign-in form passes on; longer is a wrong secret.
_MAX_FIELD_CHARS = 512
# Nothing from elsewhere and no inline code: the pages are HTML, one stylesheet and,
# on the review page, one script file of this app (keyboard shortcuts only).
_CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _sessions(session: SessionDep, settings: SettingsDep) -> ConsoleSessions:
    return ConsoleSessions(
        session,
        idle=timedelta(minutes=settings.console_idle_minutes),
        lifetime=timedelta(hours=settings.console_session_hours),
    )


ConsoleSessionsDep = Annotated[ConsoleSessions, Depends(_sessions)]


async def _console_user(request: Request, sessions: ConsoleSessionsDep) -> ConsoleUser | None:
    """The signed-in person, or None (no cookie, expired, signed out or revoked)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    user = await run_in_threadpool(sessions.find, token)
    if user is None:
        return None
    revocation = request.app.state.runtime.revocation
    await revocation.ensure_fresh(user.signed_in_at)
    if revocation.is_revoked(user.client_id, user.signed_in_at):
        await run_in_threadpool(sessions.sign_out, token)
        return None
    # Read by the request log line.
    request.state.client_id = user.client_id
    return user


ConsoleUserDep = Annotated[ConsoleUser | None, Depends(_console_user)]


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request, user: ConsoleUserDep) -> Response:
    """The sign-in form (the overview for someone already signed in)."""
    if user is not None:
        return redirect_to(request, "/console")
    return page(request, "sign_in.html", title="Sign in")


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(
    request: Request,
    sessions: ConsoleSessionsDep,
    clients: ClientServiceDep,
    settings: SettingsDep,
) -> Response:
    """Check the client id and secret under the brute-force guard and start a session."""
    if not same_origin(request):
        return refused(request)
    form = await request.form(max_files=0, max_fields=8)
    client_id = form_field(form.get("client_id"))
    secret = form_field(form.get("client_secret"))
    runtime = request.app.state.runtime
    try:
        token, user = await run_in_threadpool(
            sessions.sign_in,
            clients,
            runtime.login_guard,
            client_id,
            secret,
            client_address(request),
        )
    except InvalidClient:
        return _sign_in_error(request, 401, "Wrong client id or secret.", client_id)
    except NotForConsole:
        return _sign_in_error(
            request,
            403,
            "This client may not use the console: it needs the review or admin scope.",
            client_id,
        )
    except TooManyAttempts as exc:
        return _sign_in_error(
            request,
            429,
            f"Too many failed attempts; try again in {exc.retry_after} s.",
            client_id,
            retry_after=exc.retry_after,
        )
    except TemporarilyUnavailable as exc:
        return _sign_in_error(
            request,
            503,
            "The service is busy checking other sign-ins; try again shortly.",
            client_id,
            retry_after=exc.retry_after,
        )
    logger.info("console sign-in", extra={"client_id": user.client_id})
    response = redirect_to(request, "/console")
    response.set_cookie(
        COOKIE,
        token,
        max_age=settings.console_session_hours * 3600,
        path=_root(request) + "/console",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/sign-out")
async def sign_out(
    request: Request, user: ConsoleUserDep, sessions: ConsoleSessionsDep
) -> Response:
    """End the session (the form carries its CSRF token)."""
    if user is None:
        return redirect_to(request, "/console/sign-in")
    form = await request.form(max_files=0, max_fields=8)
    if not same_origin(request) or not user.csrf_matches(form_field(form.get("csrf_token"))):
        return refused(request)
    await run_in_threadpool(sessions.sign_out, request.cookies.get(COOKIE, ""))
    logger.info("console sign-out", extra={"client_id": user.client_id})
    response = redirect_to(request, "/console/sign-in")
    response.delete_cookie(COOKIE, path=_root(request) + "/console")
    return response


def same_origin(request: Request) -> bool:
    """Whether a POST comes from this site's own pages: a cross-site form or fetch is
    refused even before the SameSite=Strict cookie would have kept it signed out."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    # The host only: behind a TLS proxy the app may see http while the page is https.
    return urlsplit(origin).netloc == request.headers.get("host")


def form_field(value: Any) -> str:
    return value if isinstance(value, str) and len(value) <= _MAX_FIELD_CHARS else ""


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def redirect_to(request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(_root(request) + path, status_code=303)


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    context.setdefault("user", None)
    response = templates.TemplateResponse(
        request,
        f"console/{template}",
        {"root": _root(request), **context},
        status_code=status_code,
    )
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def message_page(
    request: Request, user: ConsoleUser, status: int, title: str, message: str, back: str
) -> Response:
    """A page that says why something was not done, with a link back to `back`."""
    return page(
        request,
        "message.html",
        status_code=status,
        user=user,
        title=title,
        message=message,
        back=back,
    )


def _sign_in_error(
    request: Request, status: int, message: str, client_id: str, retry_after: int | None = None
) -> Response:
    response = page(
        request,
        "sign_in.html",
        status_code=status,
        title="Sign in",
        error=message,
        client_id=client_id,
    )
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def refused(request: Request) -> Response:
    return page(
        request,
        "message.html",
        status_code=403,
        title="Refused",
        message="This form was not sent from a page of this console, so it was refused.",
    )
