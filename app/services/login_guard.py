"""Brute-force guard for the token endpoint: counts failures, never successes."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.core.errors import BackendUnavailable, TooManyAttempts
from app.services.rate_limit import STORAGE_ERRORS


class LoginGuard:
    """Refuses a client id or an address after too many failed authentications in a window."""

    def __init__(
        self, *, per_client: str, per_address: str, storage_uri: str = "memory://"
    ) -> None:
        options: dict[str, float] = {}
        if storage_uri.startswith("redis"):
            # A guard check must not hang the token endpoint when Redis is slow or down.
            options = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri, **options))
        self._per_client: RateLimitItem = parse(per_client)
        self._per_address: RateLimitItem = parse(per_address)

    def check(self, client_id: str, address: str) -> None:
        """Raise TooManyAttempts when either counter is exhausted."""
        for item, key in self._keys(client_id, address):
            with _storage_errors():
                allowed = self._limiter.test(item, *key)
                reset_at = 0.0 if allowed else self._limiter.get_window_stats(item, *key).reset_time
            if not allowed:
                raise TooManyAttempts(retry_after=max(1, math.ceil(reset_at - time.time())))

    def record_failure(self, client_id: str, address: str) -> None:
        """Count one failed authentication against the client id and the address."""
        for item, key in self._keys(client_id, address):
            with _storage_errors():
                self._limiter.hit(item, *key)

    def _keys(self, client_id: str, address: str) -> list[tuple[RateLimitItem, tuple[str, str]]]:
        return [
            (self._per_client, ("token-failures-client", client_id)),
            (self._per_address, ("token-failures-address", address)),
        ]


@contextmanager
def _storage_errors() -> Iterator[None]:
    try:
        yield
    except STORAGE_ERRORS as exc:
        raise BackendUnavailable(
            f"The brute-force guard's store is unavailable ({type(exc).__name__}); retry shortly."
        ) from None
