"""Error bodies of the non-OAuth routes (FastAPI's `{"detail": ...}` shape)."""

from __future__ import annotations

from pydantic import BaseModel


class ErrorResponse(BaseModel):
    """A plain error with a human-readable detail."""

    detail: str


class BearerErrorResponse(BaseModel):
    """A refused bearer token: the RFC 6750 error code is repeated from WWW-Authenticate."""

    detail: str
    error: str | None = None
    scope: str | None = None
