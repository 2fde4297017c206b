"""Shapes of the token endpoint and the authorization server metadata."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TokenResponse(BaseModel):
    """RFC 6749 §5.1 successful token response (no refresh token for this grant)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIsImtpZCI6IjNm...",
                    "token_type": "bearer",
                    "expires_in": 1800,
                    "scope": "predict train",
                }
            ]
        }
    )

    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Lifetime of the token in seconds.")
    scope: str = Field(description="Granted scopes, space-separated.")


class OAuthErrorResponse(BaseModel):
    """RFC 6749 §5.2 error response."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"error": "invalid_client", "error_description": "Client authentication failed."}
            ]
        }
    )

    error: str
    error_description: str


class AuthorizationServerMetadata(BaseModel):
    """RFC 8414 authorization server metadata for a client-credentials-only server."""

    issuer: str
    token_endpoint: str
    grant_types_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    scopes_supported: list[str]
    # RFC 8414 makes this REQUIRED; with no authorization endpoint there is no
    # response type to support, so the honest value is an empty list.
    response_types_supported: list[str]
    service_documentation: str
    # Only with RS256/EdDSA: an HS256 key is secret, so there is nothing to publish.
    jwks_uri: str | None = None


class JsonWebKeySet(BaseModel):
    """RFC 7517 key set: the public keys access tokens may be verified with."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "keys": [
                        {
                            "kty": "OKP",
                            "crv": "Ed25519",
                            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                            "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
                            "alg": "EdDSA",
                            "use": "sig",
                        }
                    ]
                }
            ]
        }
    )

    keys: list[dict[str, Any]]
