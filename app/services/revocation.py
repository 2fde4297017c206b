"""Which clients' tokens are still honoured, refreshed from the database every few seconds."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio.to_thread
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.core.errors import BackendUnavailable
from app.crud import client as client_crud

logger = logging.getLogger(__name__)

_REQUEST_SLACK_SECONDS = 1.5


@dataclass(frozen=True)
class _Snapshot:
    loaded_at: float
    loaded_at_wall: float
    # client_id -> tokens_valid_after as a Unix timestamp; inactive clients are absent.
    valid_after: dict[str, float] = field(default_factory=dict)


class RevocationCache:
    """A per-process copy of (client, active, tokens_valid_after), at most a few seconds old.

    Checking revocation must not cost a database query per request, yet a
    deactivated, deleted or rotated client must lose access within seconds on
    every worker and replica; reading the small client table every
    `refresh_seconds` gives both.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        refresh_seconds: float,
        max_staleness_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = session_factory
        self._refresh_seconds = refresh_seconds
        self._max_staleness = max_staleness_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._snapshot: _Snapshot | None = None
        self._lock = asyncio.Lock()

    def refresh(self) -> None:
        """Reload the snapshot from the database (blocking)."""
        started, started_wall = self._clock(), self._wall_clock()
        with self._sessions() as session:
            rows = client_crud.revocation_rows(session)
        self._snapshot = _Snapshot(
            loaded_at=started,
            loaded_at_wall=started_wall,
            valid_after={cid: tva.timestamp() for cid, active, tva in rows if active},
        )

    def refresh_if_due(self) -> None:
        """Background refresh (blocking): keeps requests from ever waiting for one."""
        if self._is_stale(self._refresh_seconds):
            self.refresh()

    async def ensure_fresh(self, issued_at: int) -> None:
        """Refresh in a worker thread when the snapshot may not know a token issued at `issued_at`.

        That is when it is older than the refresh interval, or older than the
        token itself (a client registered a moment ago must not be refused).
        """
        if not self._needs_refresh(issued_at):
            return
        async with self._lock:
            if not self._needs_refresh(issued_at):
                return
            try:
                await anyio.to_thread.run_sync(self.refresh)
            except SQLAlchemyError as exc:
                logger.warning("revocation refresh failed", extra={"error": type(exc).__name__})
                if self._is_stale(self._max_staleness):
                    raise BackendUnavailable(
                        "The client registry is unreachable; cannot check token revocation."
                    ) from exc

    def is_revoked(self, client_id: str, issued_at: int) -> bool:
        """True when the client is gone or inactive, or revoked tokens issued at `issued_at`."""
        if self._snapshot is None:
            raise BackendUnavailable("Token revocation state has not been loaded yet.")
        valid_after = self._snapshot.valid_after.get(client_id)
        return valid_after is None or issued_at < valid_after

    def _needs_refresh(self, issued_at: int) -> bool:
        snapshot = self._snapshot
        # Normally the background refresh keeps the snapshot younger than the
        # interval; a request refreshes itself only if that has fallen behind
        # (still within the 5 s promise), or for a token newer than the snapshot.
        limit = min(self._refresh_seconds + _REQUEST_SLACK_SECONDS, self._max_staleness)
        # `iat` is truncated to the second: the token was signed before iat + 1.
        return self._is_stale(limit) or (
            snapshot is not None and snapshot.loaded_at_wall < issued_at + 1
        )

    def _is_stale(self, max_age: float) -> bool:
        return self._snapshot is None or self._clock() - self._snapshot.loaded_at >= max_age
