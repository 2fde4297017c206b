"""Shapes of the operations routes."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Health(BaseModel):
    """The process is alive."""

    status: str = Field(examples=["ok"])


class Readiness(BaseModel):
    """Whether this worker can serve predictions, and why not."""

    status: str = Field(examples=["ready"])
    checks: dict[str, str] = Field(examples=[{"database": "ok", "model": "v1.0.0"}])
    reasons: list[str] = Field(default_factory=list)
