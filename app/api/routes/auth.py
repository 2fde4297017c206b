"""The OAuth2 token endpoint and the authorization server metadata."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from app.api.deps import (
    AuthServiceDep,
    ClientAddress,
    KeyringDep,
    SettingsDep,
    TokenRequestDep,
    no_store,
)
from app.core.scopes import Scope
from app.schemas.auth import (
    AuthorizationServerMetadata,
    JsonWebKeySet,
    OAuthErrorResponse,
    TokenResponse,
)

router = APIRouter(tags=["auth"])

_TOKEN_FORM: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["client_credentials"]},
                        "client_id": {
                            "type": "string",
                            "description": "client_secret_post only; otherwise HTTP Basic.",
                        },
                        "client_secret": {
                            "type": "string",
                            "format": "password",
                            "description": "client_secret_post only; otherwise HTTP Basic.",
                        },
                        "scope": {
                            "type": "string",
                            "description": "Space-separated; default: all the client's scopes.",
                            "example": "predict",
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    summary="Get an access token (client credentials)",
    dependencies=[Depends(no_store)],
    openapi_extra=_TOKEN_FORM,
    responses={
        400: {
            "model": OAuthErrorResponse,
            "description": "invalid_request, "
            "unsupported_grant_type or invalid_scope (RFC 6749 §5.2).",
        },
        401: {"model": OAuthErrorResponse, "description": "invalid_client."},
        429: {"model": OAuthErrorResponse, "description": "Too many failed attempts."},
        503: {
            "model": OAuthErrorResponse,
            "description": "temporarily_unavailable: every secret-check slot is busy; "
            "retry after Retry-After seconds.",
        },
    },
)
def issue_token(
    request: Request, token_request: TokenRequestDep, auth: AuthServiceDep, address: ClientAddress
) -> TokenResponse:
    """Trade client credentials (HTTP Basic or form body) for a bearer JWT.

    Runs in the thread pool: Argon2 verification takes tens of milliseconds, and the
    guard's non-blocking slots bound how many of these threads hash at once.
    """
    issued = auth.issue_token(token_request, address=address)
    request.state.client_id = token_request.client_id
    return TokenResponse(
        access_token=issued.access_token, expires_in=issued.expires_in, scope=issued.scope
    )


@router.get(
    "/.well-known/oauth-authorization-server",
    response_model=AuthorizationServerMetadata,
    # RFC 8414 omits absent members rather than sending null.
    response_model_exclude_none=True,
    summary="Authorization server metadata (RFC 8414)",
)
async def authorization_server_metadata(settings: SettingsDep) -> AuthorizationServerMetadata:
    """Describe the token endpoint, grant type, client auth methods and scopes."""
    issuer = settings.jwt_issuer.rstrip("/")
    return AuthorizationServerMetadata(
        issuer=settings.jwt_issuer,
        token_endpoint=f"{issuer}/auth/token",
        grant_types_supported=["client_credentials"],
        token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
        scopes_supported=[s.value for s in Scope],
        response_types_supported=[],
        service_documentation=f"{issuer}/docs",
        jwks_uri=f"{issuer}/.well-known/jwks.json" if settings.jwt_algorithm != "HS256" else None,
    )


@router.get(
    "/.well-known/jwks.json",
    response_model=JsonWebKeySet,
    summary="Public keys for verifying access tokens (RFC 7517)",
)
async def jwks(keyring: KeyringDep) -> JsonWebKeySet:
    """The current signing key and retired ones whose tokens may still be valid; public
    members only. Empty with HS256, whose key is a shared secret."""
    return JsonWebKeySet(**keyring.jwks())
