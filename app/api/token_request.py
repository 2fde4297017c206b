"""The token endpoint's request, read exactly as RFC 6749 §2.3.1, §3.2 and §4.4.2 describe it.

Kept apart from the dependency wiring because it is protocol parsing: the
form body, repeated and empty parameters, and the two client authentication
methods, each answered with the OAuth2 error the RFC names.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl, unquote_plus

from fastapi import Request

from app.core.errors import InvalidClient, InvalidRequest
from app.services.auth import TokenRequest

# Token requests are a handful of short parameters; anything bigger is abuse.
MAX_TOKEN_REQUEST_BYTES = 8 * 1024


async def parse_token_request(request: Request) -> TokenRequest:
    """Read a token request exactly as RFC 6749 §2.3.1, §3.2 and §4.4.2 describe it."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise InvalidRequest("The token endpoint accepts application/x-www-form-urlencoded only.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_TOKEN_REQUEST_BYTES:
            raise InvalidRequest("The token request body is too large.")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest("The token request body is not valid UTF-8 form data.") from exc
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise InvalidRequest(f"The parameter {name!r} is repeated.")
        params[name] = value
    # RFC 6749 §3.1: a parameter sent without a value counts as omitted.
    params = {name: value for name, value in params.items() if value != ""}
    grant_type = params.get("grant_type")
    if grant_type is None:
        raise InvalidRequest("The grant_type parameter is missing.")
    basic = _basic_credentials(request.headers.get("authorization"))
    if basic is not None:
        if "client_secret" in params:
            raise InvalidRequest("Use one client authentication method, not both.")
        if params.get("client_id", basic[0]) != basic[0]:
            raise InvalidRequest("client_id in the body differs from the Authorization header.")
        return TokenRequest(
            grant_type, basic[0], basic[1], params.get("scope"), "client_secret_basic"
        )
    if "client_id" not in params or "client_secret" not in params:
        raise InvalidClient("Client authentication is missing.")
    return TokenRequest(
        grant_type,
        params["client_id"],
        params["client_secret"],
        params.get("scope"),
        "client_secret_post",
    )


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if header is None:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise InvalidClient("Unsupported client authentication scheme.")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidRequest("The Basic credentials are not valid base64 UTF-8.") from exc
    user, colon, password = decoded.partition(":")
    if not colon:
        raise InvalidRequest("The Basic credentials lack the ':' separator.")
    # RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
    try:
        client_id = unquote_plus(user, errors="strict")
        secret = unquote_plus(password, errors="strict")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("The Basic credentials are not valid form-encoded UTF-8.") from exc
    return client_id, secret
