"""Polling a route until an answer satisfies a test: bounded, and polite to rate limits."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

# Upper bound of one pause after a 429 whose Retry-After is missing or unreadable.
DEFAULT_RETRY_AFTER = 1.0


def poll_json(
    fetch: Callable[[], httpx.Response],
    done: Callable[[dict[str, Any]], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.2,
) -> dict[str, Any]:
    """GET-like `fetch` until `done(body)`; a 429 waits its Retry-After, anything else fails.

    The total wait is bounded by `timeout`; failures say what was awaited and the
    last answer, instead of a KeyError on an error body.
    """
    deadline = time.monotonic() + timeout
    last: str = "no answer yet"
    while True:
        response = fetch()
        if response.status_code == 429:
            pause = _retry_after(response)
            last = f"429 {response.text[:300]}"
        elif response.status_code != 200:
            raise AssertionError(
                f"{what}: unexpected answer {response.status_code}: {response.text[:500]}"
            )
        else:
            body = response.json()
            if done(body):
                return dict(body)
            pause = interval
            last = str(body)[:500]
        if time.monotonic() + pause > deadline:
            raise AssertionError(f"{what}: still not done after {timeout} s; last answer: {last}")
        time.sleep(pause)


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.1, float(response.headers.get("Retry-After", DEFAULT_RETRY_AFTER)))
    except ValueError:
        return DEFAULT_RETRY_AFTER


def wait_until(condition: Callable[[], bool], *, timeout: float, message: str) -> None:
    """Return once `condition()` holds; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {message}"
        time.sleep(0.2)
