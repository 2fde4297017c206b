"""ASGI middleware that must see requests before FastAPI parses them."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import NO_STORE, OAUTH_PATHS, bearer_challenge
from app.core.errors import BackendUnavailable, InvalidToken, NotAuthenticated
from app.core.logging import request_id_var
from app.core.metrics import Metrics


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a streamed body passes its limit.

    An HTTPException so that FastAPI's body parsing re-raises it as a 413 instead
    of turning it into a generic 400.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than the limit of {limit} bytes.")


class RequestLimits:
    """Refuse oversized headers (431) and bodies above a per-path limit (413).

    Bodies are refused on Content-Length before anything is read, or while they
    stream in when the length is not declared. uvicorn's httptools parser puts no
    bound on header size, so the header check happens here (a proxy in front
    should bound it earlier).
    """

    def __init__(
        self, app: ASGIApp, limit_for: Callable[[str], int], max_header_bytes: int
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header_bytes = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
        if header_bytes > self.max_header_bytes:
            await _send_json(
                send,
                431,
                f"The request headers total {header_bytes} bytes; "
                f"the limit is {self.max_header_bytes}.",
            )
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _send_413(send, limit, scope["path"])
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await _send_413(send, limit, scope["path"])


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            # A malformed length counts as too large: the server would refuse it anyway.
            return int(value) if value.isdigit() else 1 << 62
    return None


# Where the gate leaves the claims it verified, so the route's dependency need not
# verify the same token again.
VERIFIED_CLAIMS = "verified_bearer_claims"
# No route reads a body on these; the dependency alone checks their token.
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Verifier = Callable[[str | None, Any], Awaitable[Any]]


class BearerGate:
    """Refuse a request that may carry a body without a valid bearer token, unread.

    FastAPI reads and parses a body before it runs the dependencies that check the
    token, so without this an anonymous client could make the server take in a
    50 MB upload just to be told 401. Here the `Authorization` header is verified
    (signature, claims, revocation: the same `verify` the dependency uses) before
    `receive` is ever called; scopes are still checked by the route's dependency.
    The answer is the dependency's own RFC 6750 401, plus `Connection: close` so
    the server does not go on reading the unwanted body.
    """

    def __init__(
        self,
        app: ASGIApp,
        verify: Verifier,
        exempt: frozenset[str],
        exempt_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.verify = verify
        self.exempt = exempt
        # Paths authenticated otherwise (the console's session cookie and CSRF token).
        self.exempt_prefixes = exempt_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in _BODYLESS_METHODS
            or scope["path"].rstrip("/") in self.exempt
            or scope["path"].startswith(self.exempt_prefixes)
        ):
            await self.app(scope, receive, send)
            return
        runtime = scope["app"].state.runtime
        authorization = _header(scope, b"authorization")
        try:
            claims = await self.verify(authorization, runtime)
        except NotAuthenticated:
            await _send_json(
                send, 401, "Not authenticated", [(b"www-authenticate", bearer_challenge().encode())]
            )
            return
        except InvalidToken as exc:
            challenge = bearer_challenge(error="invalid_token", error_description=exc.message)
            await _send_json(
                send,
                401,
                exc.message,
                [(b"www-authenticate", challenge.encode())],
                {"error": "invalid_token"},
            )
            return
        except BackendUnavailable as exc:
            await _send_json(send, 503, exc.message, [(b"retry-after", b"5")])
            return
        scope.setdefault("state", {})[VERIFIED_CLAIMS] = claims
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _send_413(send: Send, limit: int, path: str) -> None:
    message = f"The request body is larger than the limit of {limit} bytes."
    if path.rstrip("/") in OAUTH_PATHS:
        body = {"error": "invalid_request", "error_description": message}
        no_store = [(name.lower().encode(), value.encode()) for name, value in NO_STORE.items()]
        await _send_body(send, 413, body, no_store)
        return
    await _send_json(send, 413, message)


async def _send_json(
    send: Send,
    status: int,
    detail: str,
    headers: list[tuple[bytes, bytes]] | None = None,
    extra: dict[str, str] | None = None,
) -> None:
    await _send_body(send, status, {"detail": detail, **(extra or {})}, headers)


async def _send_body(
    send: Send, status: int, content: dict[str, str], headers: list[tuple[bytes, bytes]] | None
) -> None:
    body = json.dumps(content).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_access_log = logging.getLogger("app.access")


class RequestContext:
    """Request id, one access-log line and the HTTP metrics for every request.

    The id is taken from `X-Request-ID` when it is a short token (anything else
    could forge log lines) or generated, and echoed in the response. The log line
    and the metrics use the route template (`/training/{job_id}`), never the raw
    path or query string, which could carry identifiers or tokens.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.requests = metrics.http_requests
        self.latency = metrics.http_latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "<unmatched>"
            method = scope["method"]
            self.requests.labels(method, route, str(status)).inc()
            self.latency.labels(method, route).observe(elapsed)
            state = scope.get("state") or {}
            _access_log.info(
                "request",
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "client_id": state.get("client_id"),
                    "client_address": (scope.get("client") or (None,))[0],
                },
            )
            request_id_var.reset(token)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _REQUEST_ID.match(text) else None
    return None
