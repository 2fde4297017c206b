"""Brute-force guard for the token endpoint: counts failures, never successes."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.core.errors import TooManyAttempts


class LoginGuard:
    """Refuses a client id or an address after too many failed authentications in a window."""

    def __init__(
        self, *, per_client: str, per_address: str, storage_uri: str = "memory://"
    ) -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self._per_client: RateLimitItem = parse(per_client)
        self._per_address: RateLimitItem = parse(per_address)

    def check(self, client_id: str, address: str) -> None:
        """Raise TooManyAttempts when either counter is exhausted."""
        for item, key in self._keys(client_id, address):
            if not self._limiter.test(item, *key):
                reset_at = self._limiter.get_window_stats(item, *key).reset_time
                raise TooManyAttempts(retry_after=max(1, math.ceil(reset_at - time.time())))

    def record_failure(self, client_id: str, address: str) -> None:
        """Count one failed authentication against the client id and the address."""
        for item, key in self._keys(client_id, address):
            self._limiter.hit(item, *key)

    def _keys(self, client_id: str, address: str) -> list[tuple[RateLimitItem, tuple[str, str]]]:
        return [
            (self._per_client, ("token-failures-client", client_id)),
            (self._per_address, ("token-failures-address", address)),
        ]
