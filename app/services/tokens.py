"""Issuing and verifying access tokens (RFC 9068 JWTs)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TLRUCache

from app.core.config import Settings
from app.core.errors import InvalidScope, InvalidToken
from app.core.keys import Keyring
from app.core.scopes import Scope, format_scopes, parse_scopes
from app.core.security import TokenDecodeError, decode_access_token, encode_access_token
from app.services.clients import ClientRecord


@dataclass(frozen=True)
class IssuedToken:
    """What the token endpoint hands back."""

    access_token: str
    expires_in: int
    scope: str


@dataclass(frozen=True)
class TokenClaims:
    """The verified facts an access token carries."""

    client_id: str
    scopes: frozenset[str]
    issued_at: int
    token_id: str


# Verified tokens remembered per process. A client sends the same token with every
# request until it expires, and verifying it again (base64, HMAC or signature,
# claims) was the largest single cost of a prediction. Bounded, so a flood of
# distinct valid tokens only evicts; invalid tokens are never remembered.
VERIFIED_TOKENS_CACHED = 1024


def _until_expiry(_token: str, verified: tuple[TokenClaims, float], _now: float) -> float:
    return verified[1]


class TokenService:
    """Signs tokens for authenticated clients and verifies the ones presented back."""

    def __init__(
        self,
        settings: Settings,
        keyring: Keyring,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._lifetime = settings.access_token_expire_minutes * 60
        self._keyring = keyring
        self._clock = clock
        self._sleep = sleep
        # Expiry on the clock PyJWT checks `exp` against, so a remembered token
        # lapses when a fresh verification would refuse it (minus the leeway).
        self._verified: TLRUCache[str, tuple[TokenClaims, float]] = TLRUCache(
            VERIFIED_TOKENS_CACHED, ttu=_until_expiry, timer=time.time
        )
        # cachetools caches are not thread-safe; verification also runs in threads.
        self._verified_lock = threading.Lock()

    @property
    def keyring(self) -> Keyring:
        """The keys this service signs and verifies with."""
        return self._keyring

    def grant_scopes(self, client: ClientRecord, requested: str | None) -> tuple[Scope, ...]:
        """The scopes to grant: all allowed ones when none are asked for (RFC 6749 §3.3)."""
        if requested is None or not requested.strip():
            return client.scopes
        try:
            asked = parse_scopes(requested)
        except ValueError as exc:
            raise InvalidScope(f"The requested scope is invalid: {exc}.") from exc
        refused = [s.value for s in asked if s not in client.scopes]
        if refused:
            raise InvalidScope(f"The client may not request scope: {' '.join(refused)}.")
        return asked

    def issue(self, client: ClientRecord, scopes: tuple[Scope, ...]) -> IssuedToken:
        """Sign an access token for `client` limited to `scopes`."""
        now = self._clock()
        # A revocation marks the whole current second (see ClientService); a token
        # signed inside that second would be born revoked, so wait it out (< 1 s,
        # and only right after a rotation or re-activation).
        valid_after = client.tokens_valid_after.timestamp()
        while now < valid_after:
            self._sleep(valid_after - now)
            now = self._clock()
        issued_at = int(now)
        scope = format_scopes(scopes)
        claims = {
            "iss": self._issuer,
            "sub": client.client_id,
            "client_id": client.client_id,
            "aud": self._audience,
            "iat": issued_at,
            "exp": issued_at + self._lifetime,
            "jti": uuid.uuid4().hex,
            "scope": scope,
        }
        token = encode_access_token(claims, self._keyring.current)
        return IssuedToken(access_token=token, expires_in=self._lifetime, scope=scope)

    def verify(self, token: str) -> TokenClaims:
        """Check signature, header and claims; InvalidToken says what is wrong.

        A token verified before is answered from memory until its `exp`; the
        caller still checks revocation on every request.
        """
        with self._verified_lock:
            remembered = self._verified.get(token)
        if remembered is not None:
            return remembered[0]
        try:
            claims = decode_access_token(
                token,
                keys=self._keyring.accepted,
                audience=self._audience,
                issuer=self._issuer,
            )
        except TokenDecodeError as exc:
            raise InvalidToken(str(exc)) from exc
        verified = TokenClaims(
            client_id=claims["client_id"],
            scopes=frozenset(claims["scope"].split()),
            issued_at=int(claims["iat"]),
            token_id=str(claims["jti"]),
        )
        with self._verified_lock:
            self._verified[token] = (verified, float(claims["exp"]))
        return verified
