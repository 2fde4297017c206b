"""The one place where domain errors become HTTP responses."""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.core.errors import (
    BackendUnavailable,
    BadRequest,
    Conflict,
    GaroupaError,
    InsufficientScope,
    InvalidClient,
    InvalidToken,
    ModelNotReady,
    NotAuthenticated,
    NotFound,
    OAuthError,
    QuotaExceeded,
    RateLimited,
    TemporarilyUnavailable,
    TooManyAttempts,
    Unprocessable,
)
from app.core.metrics import Metrics

logger = logging.getLogger(__name__)

REALM = "garoupa"
# RFC 6749 §5.2: every error of the token endpoint has the OAuth shape.
OAUTH_PATHS = frozenset({"/auth/token"})
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

_OAUTH_STATUS: dict[type[OAuthError], int] = {
    InvalidClient: 401,
    TooManyAttempts: 429,
    TemporarilyUnavailable: 503,
}
# RFC 6750 §3: error_description may hold %x20-21 / %x23-5B / %x5D-7E only.
_UNQUOTABLE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def _quoted(value: str) -> str:
    return '"' + _UNQUOTABLE.sub("", value) + '"'


def bearer_challenge(**params: str) -> str:
    """A `WWW-Authenticate: Bearer` value with the realm and the given parameters."""
    pairs = [f"realm={_quoted(REALM)}"] + [f"{k}={_quoted(v)}" for k, v in params.items()]
    return "Bearer " + ", ".join(pairs)


def _count_token_outcome(request: Request, outcome: str) -> None:
    metrics: Metrics = request.app.state.metrics
    metrics.count_token_outcome(outcome)


async def _oauth_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OAuthError)
    _count_token_outcome(request, exc.error_code)
    headers = dict(NO_STORE)
    if isinstance(exc, InvalidClient):
        # RFC 6749 §5.2: 401 with a challenge for the scheme clients authenticate with.
        headers["WWW-Authenticate"] = f'Basic realm="{REALM}", charset="UTF-8"'
    if isinstance(exc, TooManyAttempts | TemporarilyUnavailable):
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse(
        {"error": exc.error_code, "error_description": exc.message},
        status_code=_OAUTH_STATUS.get(type(exc), 400),
        headers=headers,
    )


async def _not_authenticated(_: Request, exc: Exception) -> JSONResponse:
    # RFC 6750 §3.1: no error code when the request carried no token at all.
    return JSONResponse(
        {"detail": "Not authenticated"},
        status_code=401,
        headers={"WWW-Authenticate": bearer_challenge()},
    )


async def _invalid_token(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidToken)
    challenge = bearer_challenge(error="invalid_token", error_description=exc.message)
    return JSONResponse(
        {"detail": exc.message, "error": "invalid_token"},
        status_code=401,
        headers={"WWW-Authenticate": challenge},
    )


async def _insufficient_scope(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InsufficientScope)
    scope = " ".join(exc.required)
    challenge = bearer_challenge(
        error="insufficient_scope", error_description=exc.message, scope=scope
    )
    return JSONResponse(
        {"detail": exc.message, "error": "insufficient_scope", "scope": scope},
        status_code=403,
        headers={"WWW-Authenticate": challenge},
    )


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BackendUnavailable | ModelNotReady)
    if request.url.path.rstrip("/") in OAUTH_PATHS:
        # RFC 6749 §5.2: the token endpoint answers every error in the OAuth shape.
        _count_token_outcome(request, "temporarily_unavailable")
        return JSONResponse(
            {"error": "temporarily_unavailable", "error_description": exc.message},
            status_code=503,
            headers={**NO_STORE, "Retry-After": "5"},
        )
    return JSONResponse({"detail": exc.message}, status_code=503, headers={"Retry-After": "5"})


_PLAIN_STATUS: dict[type[GaroupaError], int] = {
    BadRequest: 400,
    NotFound: 404,
    Conflict: 409,
    Unprocessable: 422,
    # RFC 9110 §15.5.14: content larger than the server is willing to accept (a 4xx:
    # the client can delete or wait out old uploads; 507 would blame the server).
    QuotaExceeded: 413,
}


async def _plain(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GaroupaError)
    status = next(code for kind, code in _PLAIN_STATUS.items() if isinstance(exc, kind))
    return JSONResponse({"detail": exc.message}, status_code=status)


async def _rate_limited(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimited)
    return JSONResponse(
        {"detail": exc.message, "scope": exc.scope, "retry_after": exc.retry_after},
        status_code=429,
        headers={"Retry-After": str(exc.retry_after)},
    )


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # FastAPI echoes the offending input; NaN or Infinity there would make the
    # error response itself unencodable (a 500), so such values become strings.
    return JSONResponse({"detail": _json_safe(jsonable_encoder(exc.errors()))}, status_code=422)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Never a stack trace in a response; the log has it.
    logger.error(
        "unhandled error", exc_info=exc, extra={"path": request.url.path, "method": request.method}
    )
    return JSONResponse({"detail": "Internal server error."}, status_code=500)


def add_exception_handlers(app: FastAPI) -> None:
    """Register every domain-error handler on `app`."""
    app.add_exception_handler(OAuthError, _oauth_error)
    app.add_exception_handler(NotAuthenticated, _not_authenticated)
    app.add_exception_handler(InvalidToken, _invalid_token)
    app.add_exception_handler(InsufficientScope, _insufficient_scope)
    app.add_exception_handler(BackendUnavailable, _unavailable)
    app.add_exception_handler(ModelNotReady, _unavailable)
    app.add_exception_handler(RateLimited, _rate_limited)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for kind in _PLAIN_STATUS:
        app.add_exception_handler(kind, _plain)
    app.add_exception_handler(Exception, _unexpected)
