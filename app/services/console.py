"""People signed in to the console: server-side sessions behind an HttpOnly cookie.

A person signs in with a client id and secret from the same registry as the
machine clients (one client per person, with the `review` or `admin` scope),
under the token endpoint's brute-force guard. The cookie holds a random token;
the database keeps only its SHA-256, with the client, its scopes at sign-in, a
CSRF token for the forms, and when the session was made and last used. A
session ends when its person signs out, after CONSOLE_IDLE_MINUTES unused,
CONSOLE_SESSION_HOURS after sign-in, or when the client is deactivated,
deleted, rotated or re-scoped: that moves the client's `tokens_valid_after`,
which the revocation cache (at most 5 s old) applies to sessions as to tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from app.core.errors import InvalidClient
from app.core.scopes import Scope, format_scopes, parse_scopes
from app.crud import console_session as crud
from app.db.models import ConsoleSession
from app.services.clients import ClientService
from app.services.login_guard import LoginGuard

# The scopes that may sign in; a machine client (predict, train) may not.
CONSOLE_SCOPES = frozenset({Scope.review, Scope.admin})
# Writing last_seen_at on every page would make each page view a write.
_TOUCH_EVERY = timedelta(seconds=60)


class NotForConsole(Exception):
    """The client authenticated but holds neither `review` nor `admin`."""


@dataclass(frozen=True)
class ConsoleUser:
    """The person behind a live console session."""

    client_id: str
    scopes: frozenset[Scope]
    csrf_token: str
    # Whole seconds, as a token's `iat`: what revocation compares with.
    signed_in_at: int

    @property
    def is_admin(self) -> bool:
        """Whether the person may see everything (clients, audit, every client's rows)."""
        return Scope.admin in self.scopes

    def csrf_matches(self, given: str | None) -> bool:
        """Whether a form or header carried this session's CSRF token."""
        return given is not None and hmac.compare_digest(given, self.csrf_token)


def token_hash(token: str) -> str:
    """What the database keeps of a session cookie."""
    return hashlib.sha256(token.encode()).hexdigest()


class ConsoleSessions:
    """Sign-in, look-up and sign-out of console sessions on one database session."""

    def __init__(
        self,
        session: Session,
        *,
        idle: timedelta,
        lifetime: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._session = session
        self._idle = idle
        self._lifetime = lifetime
        self._clock = clock

    def sign_in(
        self, clients: ClientService, guard: LoginGuard, client_id: str, secret: str, address: str
    ) -> tuple[str, ConsoleUser]:
        """A new session's cookie value and person; InvalidClient, NotForConsole, or the
        guard's TooManyAttempts / TemporarilyUnavailable otherwise."""
        with guard.attempt(client_id, address) as attempt:
            try:
                client = clients.authenticate(client_id, secret)
            except InvalidClient:
                attempt.failed()
                raise
        if not CONSOLE_SCOPES.intersection(client.scopes):
            raise NotForConsole()
        # As for tokens: a revocation covers its whole second, so a session made in
        # it would be born revoked; wait the rest of that second out.
        wait = client.tokens_valid_after.timestamp() - self._clock().timestamp()
        if wait > 0:
            time.sleep(min(wait, 1.0))
        now = self._clock()
        token = secrets.token_urlsafe(32)
        row = ConsoleSession(
            token_hash=token_hash(token),
            client_id=client.client_id,
            scopes=format_scopes(client.scopes),
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
        )
        # Housekeeping on the way: sessions nobody used for the idle time are dead.
        crud.end_idle(self._session, seen_before=now - self._idle)
        crud.add(self._session, row)
        self._session.commit()
        return token, _user(row)

    def find(self, token: str) -> ConsoleUser | None:
        """The person of a cookie's session if it exists and has not expired (revocation
        is the caller's to check, against the revocation cache)."""
        if not token or len(token) > 128:
            return None
        hashed = token_hash(token)
        row = crud.find(self._session, hashed)
        if row is None:
            return None
        now = self._clock()
        if now - row.last_seen_at >= self._idle or now - row.created_at >= self._lifetime:
            crud.end(self._session, hashed)
            self._session.commit()
            return None
        if now - row.last_seen_at >= _TOUCH_EVERY:
            row.last_seen_at = now
            self._session.commit()
        return _user(row)

    def sign_out(self, token: str) -> None:
        """End the cookie's session (nothing when there is none)."""
        crud.end(self._session, token_hash(token))
        self._session.commit()


def _user(row: ConsoleSession) -> ConsoleUser:
    return ConsoleUser(
        client_id=row.client_id,
        scopes=frozenset(parse_scopes(row.scopes)),
        csrf_token=row.csrf_token,
        signed_in_at=int(row.created_at.timestamp()),
    )
