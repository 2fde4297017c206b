"""Brute-force guard for the token endpoint: counts failures, never successes.

Three controls, checked in this order before any secret is verified:

1. Per client id, at most `per_client` wrong secrets in a moving window. An
   attempt reserves its place *before* Argon2 runs (failures already counted
   plus attempts in flight must stay within the limit), so parallel guesses
   cannot all slip past a check made before any of them failed. A success
   releases its reservation and is never counted. When the limit is reached
   by failures the answer is 429; when only by attempts still in flight, 503
   (retry in a second, by which time their outcome is known).
2. Per process, at most `max_concurrent_checks` secret verifications at once
   (each Argon2 check takes ~64 MiB); above that the request is turned away
   at once with 503 rather than queued.
3. Per address, failures are counted too, but an exhausted address ("hot") is
   not refused outright: its attempts are still verified, one at a time per
   address, and only the failing ones are answered 429. Services behind one
   NAT or proxy share an address; a neighbour with a stale secret must not
   lock out a client that presents correct credentials.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.core.errors import BackendUnavailable, TemporarilyUnavailable, TooManyAttempts
from app.services.rate_limit import STORAGE_ERRORS

# A request refused for lack of a verification slot may retry almost at once:
# a slot frees up as soon as one Argon2 check (tens of milliseconds) ends.
BUSY_RETRY_AFTER_SECONDS = 1


class SecretCheckSlots:
    """A non-blocking bound on concurrent secret verifications in this process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._semaphore = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._in_use = 0

    @property
    def in_use(self) -> int:
        """Verifications running now."""
        return self._in_use

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Take a slot for the block; TemporarilyUnavailable (503) when none is free."""
        if not self._semaphore.acquire(blocking=False):
            raise TemporarilyUnavailable(retry_after=BUSY_RETRY_AFTER_SECONDS)
        with self._lock:
            self._in_use += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_use -= 1
            self._semaphore.release()


class LoginAttempt:
    """One token request's authentication under the guard; report a failure with `failed()`."""

    def __init__(self, guard: LoginGuard, client_id: str, address: str, *, hot: bool) -> None:
        self._guard = guard
        self._client_id = client_id
        self._address = address
        self.hot = hot

    def failed(self) -> None:
        """Count the failure; from a hot address, raise TooManyAttempts (429) instead of 401."""
        self._guard.record_failure(self._client_id, self._address)
        if self.hot:
            raise TooManyAttempts(retry_after=self._guard.address_retry_after(self._address))


class LoginGuard:
    """Bounds wrong secrets per client id and per address, and concurrent Argon2 checks."""

    def __init__(
        self,
        *,
        per_client: str,
        per_address: str,
        storage_uri: str = "memory://",
        max_concurrent_checks: int = 4,
    ) -> None:
        options: dict[str, float] = {}
        if storage_uri.startswith("redis"):
            # A guard check must not hang the token endpoint when Redis is slow or down.
            options = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri, **options))
        self._per_client: RateLimitItem = parse(per_client)
        self._per_address: RateLimitItem = parse(per_address)
        self.slots = SecretCheckSlots(max_concurrent_checks)
        # Attempts per client id whose verification is under way in this process.
        # With Redis, other workers' in-flight attempts are not seen here, so the
        # per-id bound can be exceeded by at most (workers - 1) x max_concurrent_checks.
        self._pending: Counter[str] = Counter()
        self._hot_busy: set[str] = set()
        self._lock = threading.Lock()

    @contextmanager
    def attempt(self, client_id: str, address: str) -> Iterator[LoginAttempt]:
        """Reserve an attempt and a verification slot for the block, or refuse (429/503)."""
        self._reserve(client_id)
        try:
            hot = self._is_hot(address)
            with self._hot_turn(address, hot), self.slots.hold():
                yield LoginAttempt(self, client_id, address, hot=hot)
        finally:
            # After a failure was counted (in `failed`), so the attempt is never
            # invisible to a concurrent reservation.
            with self._lock:
                self._pending[client_id] -= 1
                if self._pending[client_id] <= 0:
                    del self._pending[client_id]

    def _reserve(self, client_id: str) -> None:
        key = ("token-failures-client", client_id)
        # One lock around read and reservation: two requests cannot both take the
        # last place. The read is one in-memory or Redis round trip.
        with self._lock, _storage_errors():
            stats = self._limiter.get_window_stats(self._per_client, *key)
            if stats.remaining - self._pending[client_id] >= 1:
                self._pending[client_id] += 1
                return
        if stats.remaining >= 1:
            # The last places are held by attempts still being verified: whether
            # they fail is not known yet, so this one waits its turn (503, not 429:
            # no failure may have happened at all, e.g. a burst of correct requests).
            raise TemporarilyUnavailable(retry_after=BUSY_RETRY_AFTER_SECONDS)
        raise TooManyAttempts(retry_after=_seconds_until(stats.reset_time))

    def _is_hot(self, address: str) -> bool:
        with _storage_errors():
            return not self._limiter.test(self._per_address, "token-failures-address", address)

    @contextmanager
    def _hot_turn(self, address: str, hot: bool) -> Iterator[None]:
        """A hot address verifies one secret at a time: spraying ids from it is slowed."""
        if not hot:
            yield
            return
        with self._lock:
            if address in self._hot_busy:
                raise TemporarilyUnavailable(retry_after=BUSY_RETRY_AFTER_SECONDS)
            self._hot_busy.add(address)
        try:
            yield
        finally:
            with self._lock:
                self._hot_busy.discard(address)

    def record_failure(self, client_id: str, address: str) -> None:
        """Count one failed authentication against the client id and the address."""
        with _storage_errors():
            self._limiter.hit(self._per_client, "token-failures-client", client_id)
            self._limiter.hit(self._per_address, "token-failures-address", address)

    def address_retry_after(self, address: str) -> int:
        """Seconds until the address's failure window lets it cool down."""
        with _storage_errors():
            stats = self._limiter.get_window_stats(
                self._per_address, "token-failures-address", address
            )
        return _seconds_until(stats.reset_time)


def _seconds_until(instant: float) -> int:
    return max(1, math.ceil(instant - time.time()))


@contextmanager
def _storage_errors() -> Iterator[None]:
    try:
        yield
    except STORAGE_ERRORS as exc:
        raise BackendUnavailable(
            f"The brute-force guard's store is unavailable ({type(exc).__name__}); retry shortly."
        ) from None
