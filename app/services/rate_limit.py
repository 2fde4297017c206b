"""Per-client request rate limits by scope, in memory or shared through Redis."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string
from redis.exceptions import RedisError

from app.core.errors import BackendUnavailable, RateLimited

UNLIMITED = "unlimited"
# A rate-limit check must never hold a request for long: a Redis that does not
# answer quickly is reported as unavailable (503) instead.
_REDIS_TIMEOUT_SECONDS = 0.5


def async_storage_uri(redis_url: str | None) -> str:
    """The `limits` async storage for a Redis URL, or process memory without one."""
    if not redis_url:
        return "async+memory://"
    return "async+" + redis_url


# What a counter store raises when Redis is down, slow or refusing.
STORAGE_ERRORS = (RedisError, StorageError, OSError)


class RateLimiter:
    """Counts each client's requests per scope in a sliding window (O(1) per request)."""

    def __init__(self, limits_by_scope: dict[str, str], redis_url: str | None = None) -> None:
        self._items: dict[str, RateLimitItem] = {
            scope: parse(limit)
            for scope, limit in limits_by_scope.items()
            if limit.strip().lower() != UNLIMITED
        }
        options: dict[str, float | str | bool] = {}
        if redis_url:
            options = {
                "implementation": "redispy",
                "socket_timeout": _REDIS_TIMEOUT_SECONDS,
                "socket_connect_timeout": _REDIS_TIMEOUT_SECONDS,
            }
        self._limiter = SlidingWindowCounterRateLimiter(
            storage_from_string(async_storage_uri(redis_url), **options)
        )

    async def hit(self, client_id: str, scopes: list[str]) -> None:
        """Count one request of `client_id` against each scope's limit; RateLimited if over."""
        for scope in scopes:
            item = self._items.get(scope)
            if item is None:
                continue
            reset_at = await self._count(item, client_id, scope)
            if reset_at is None:
                continue
            raise RateLimited(
                scope=scope,
                limit=str(item),
                retry_after=max(1, math.ceil(reset_at - time.time())),
            )

    async def _count(self, item: RateLimitItem, client_id: str, scope: str) -> float | None:
        """Count one hit; None if allowed, else when the window frees up."""
        for attempt in range(2):
            try:
                if await self._limiter.hit(item, "client", client_id, scope):
                    return None
                stats = await self._limiter.get_window_stats(item, "client", client_id, scope)
                return stats.reset_time
            except STORAGE_ERRORS as exc:
                # One retry: after Redis restarts, each pooled connection fails
                # once before the client reconnects.
                if attempt == 0:
                    continue
                # Storage errors (Redis down or slow) must not hang or crash requests.
                raise BackendUnavailable(
                    f"The rate-limit store is unavailable ({type(exc).__name__}); retry shortly."
                ) from None
        raise AssertionError("unreachable")
