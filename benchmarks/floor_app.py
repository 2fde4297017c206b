"""The floor: the cheapest honest version of Garoupa's `POST /predict/`.

Issue 12 measures Garoupa against this app. It does what any server answering
the same call must do, and nothing else: accept the HTTP request, verify the
bearer token exactly as Garoupa accepts it, parse the JSON body into a pydantic
model, and serialise an answer shaped like Garoupa's. Whatever Garoupa costs
above this (scoring, request logging, metrics, revocation, limits, middleware)
is what the serving benchmark (`benchmarks/serving_bench.py`) puts a number on.

    SECRET_KEY=... uvicorn benchmarks.floor_app:app [--workers N]

`app` is a module-level name built on first access (PEP 562, as in `app.main`),
so importing this module reads no environment; `create_app()` is the same app
as a factory (`uvicorn --factory benchmarks.floor_app:create_app`).

Tokens are verified with PyJWT the way `app.core.security.decode_access_token`
does: HS256 with SECRET_KEY, header `typ` at+jwt and the `kid` Garoupa derives
from the secret, every RFC 9068 claim required, `exp` with the same leeway,
audience JWT_AUDIENCE (default `garoupa-api`), issuer JWT_ISSUER (default
`http://127.0.0.1:8000`), and the `predict` scope. The settings come from the
environment only, not from `.env`. The key id, the claim list and the leeway
are imported from `app.core` so that the two cannot drift apart; that import
brings pydantic-settings and a few small libraries along (about 3 MB of RSS).
Left out on purpose: the model, logging, metrics, the database (so revocation),
rate and size limits.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import jwt
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.core.config import Settings
from app.core.keys import key_id
from app.core.security import ACCESS_TOKEN_TYPES, CLOCK_LEEWAY_SECONDS, REQUIRED_CLAIMS

ALGORITHM = "HS256"
PREDICT_SCOPE = "predict"
INSUFFICIENT_SCOPE_CHALLENGE = f'Bearer error="insufficient_scope", scope="{PREDICT_SCOPE}"'
ANSWER: dict[str, Any] = {
    "predicted_category": "Susu",
    "prediction_score": 0.987,
    "model_version": "v1.0.0",
    "top_k": [{"category": "Susu", "score": 0.987}],
}


class PredictionRequest(BaseModel):
    """The body of `POST /predict/`: one product name."""

    product_name: str


def _unauthorized(reason: str, error: str | None = "invalid_token") -> HTTPException:
    challenge = f'Bearer error="{error}"' if error else "Bearer"
    return HTTPException(status_code=401, detail=reason, headers={"WWW-Authenticate": challenge})


class TokenVerifier:
    """Garoupa's acceptance rules for an HS256 access token, as a FastAPI dependency."""

    def __init__(self, secret: str, issuer: str, audience: str) -> None:
        self._secret = secret
        self._kid = key_id(secret)
        self._issuer = issuer
        self._audience = audience

    # Async although it does no I/O: FastAPI runs a plain `def` dependency in a
    # worker thread, a hop that would cost more than the verification itself.
    async def __call__(self, request: Request) -> None:
        """Accept the request only with a valid bearer token carrying the `predict` scope."""
        claims = self.verify(request.headers.get("authorization"))
        if PREDICT_SCOPE not in claims["scope"].split():
            raise HTTPException(
                status_code=403,
                detail="The access token lacks the predict scope.",
                headers={"WWW-Authenticate": INSUFFICIENT_SCOPE_CHALLENGE},
            )

    def verify(self, authorization: str | None) -> dict[str, Any]:
        """The claims of a valid token in an `Authorization` header value, else a 401."""
        if authorization is None:
            raise _unauthorized("Not authenticated.", error=None)
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise _unauthorized("Not authenticated.", error=None)
        token = token.strip()
        if not token or " " in token:
            raise _unauthorized("The access token is malformed.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _unauthorized("The access token is malformed.") from None
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise _unauthorized("The token is not an access token.")
        if header.get("kid") != self._kid:
            raise _unauthorized("The token was signed with an unknown key.")
        # Pinned, as Garoupa pins it to the key: no alg=none, no algorithm confusion.
        if header.get("alg") != ALGORITHM:
            raise _unauthorized("The token's signing algorithm is not accepted.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=CLOCK_LEEWAY_SECONDS,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.PyJWTError:
            raise _unauthorized("The access token is invalid.") from None
        if not (
            isinstance(claims["sub"], str)
            and claims["client_id"] == claims["sub"]
            and isinstance(claims["scope"], str)
            and isinstance(claims["iat"], int | float)
        ):
            raise _unauthorized("The access token's claims are inconsistent.")
        return claims


def _setting(name: str) -> str:
    # Garoupa ignores empty variables (env_ignore_empty) and falls back to its
    # defaults; taking the defaults from Settings keeps the two in step.
    value = os.environ.get(name.upper())
    return value if value else str(Settings.model_fields[name].default)


def create_app() -> FastAPI:
    """The floor app, configured from SECRET_KEY, JWT_ISSUER and JWT_AUDIENCE."""
    secret = os.environ.get("SECRET_KEY")
    if not secret:
        raise RuntimeError(
            "SECRET_KEY is not set: the floor verifies Garoupa's HS256 tokens with "
            "the deployment's SECRET_KEY"
        )
    verifier = TokenVerifier(secret, _setting("jwt_issuer"), _setting("jwt_audience"))
    app = FastAPI(title="Garoupa floor", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/predict/", dependencies=[Depends(verifier)])
    async def predict(body: PredictionRequest) -> JSONResponse:
        # A JSONResponse serialises the answer per request, as a real server must,
        # without the response-model validation that is Garoupa's own choice.
        return JSONResponse(ANSWER)

    return app


@functools.cache
def _default_app() -> FastAPI:
    return create_app()


def __getattr__(name: str) -> FastAPI:
    if name == "app":
        return _default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
