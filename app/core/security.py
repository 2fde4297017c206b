"""Secret hashing (Argon2id via pwdlib) and access-token JWTs (RFC 9068 via PyJWT)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.core.keys import JwtKey

# RFC 9068 §2.2: every one of these must be present for a token to be accepted.
REQUIRED_CLAIMS = ("iss", "sub", "client_id", "aud", "exp", "iat", "jti", "scope")
# RFC 9068 §4: "at+jwt"; the long media-type form is equally valid.
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
# Tolerated clock difference between replicas, in seconds.
CLOCK_LEEWAY_SECONDS = 5


def build_secret_hasher() -> PasswordHash:
    """The Argon2id hasher used for client secrets."""
    return PasswordHash((Argon2Hasher(),))


def generate_client_secret() -> str:
    """A 32-byte URL-safe random secret (survives form-encoding unchanged)."""
    return secrets.token_urlsafe(32)


class TokenDecodeError(Exception):
    """The token is not an access token this service issued and still honours."""


def encode_access_token(claims: Mapping[str, Any], key: JwtKey) -> str:
    """Sign `claims` as an RFC 9068 access token."""
    return jwt.encode(
        dict(claims),
        key.signing_key,
        algorithm=key.algorithm,
        headers={"typ": "at+jwt", "kid": key.kid},
    )


def decode_access_token(
    token: str, *, keys: Mapping[str, JwtKey], audience: str, issuer: str
) -> dict[str, Any]:
    """Verify signature, header and claims; raise TokenDecodeError with a reason."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenDecodeError("The access token is malformed.") from exc
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
        raise TokenDecodeError("The token is not an access token (typ must be at+jwt).")
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise TokenDecodeError("The token was signed with an unknown key.")
    # Pinning the algorithm to the key defeats alg=none and algorithm confusion.
    if header.get("alg") != key.algorithm:
        raise TokenDecodeError("The token's signing algorithm is not accepted.")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.verification_key,
            algorithms=[key.algorithm],
            audience=audience,
            issuer=issuer,
            leeway=CLOCK_LEEWAY_SECONDS,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenDecodeError("The access token expired.") from exc
    except jwt.InvalidSignatureError as exc:
        raise TokenDecodeError("The access token signature is invalid.") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise TokenDecodeError(f"The access token lacks the {exc.claim!r} claim.") from exc
    except (jwt.InvalidAudienceError, jwt.InvalidIssuerError) as exc:
        raise TokenDecodeError("The access token was issued for another service.") from exc
    except jwt.PyJWTError as exc:
        raise TokenDecodeError("The access token is invalid.") from exc
    if not (
        isinstance(claims["sub"], str)
        and claims["client_id"] == claims["sub"]
        and isinstance(claims["scope"], str)
        and isinstance(claims["iat"], int | float)
    ):
        raise TokenDecodeError("The access token's claims are inconsistent.")
    return claims
