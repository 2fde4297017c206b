"""Shapes of the shadow-evaluation routes (`/models/{version}/shadow`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ShadowRequest(BaseModel):
    """Start scoring a share of live traffic with a candidate version too."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{}, {"sample_rate": 0.25}]},
    )

    sample_rate: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="Share of the names served by `POST /predict/` and `/predict/batch` "
        "that the candidate scores too, on every worker and replica.",
    )


class ShadowFlip(BaseModel):
    """Items the active version put in one category and the candidate in another."""

    active_category: str
    candidate_category: str
    count: int
    examples: list[str] = Field(description="Up to three of the names, as clients sent them.")


class ShadowSide(BaseModel):
    """One version's answers on the compared items."""

    items: int
    mean_score: float | None
    needs_review_rate: float | None
    out_of_scope_rate: float | None
    score_histogram: list[int] = Field(
        description="Items per tenth of the score: [0, 0.1), [0.1, 0.2), ..., [0.9, 1]."
    )


class LatencyBin(BaseModel):
    """Items whose scoring took at most `le_us` microseconds each (null: slower)."""

    le_us: int | None
    items: int


class CandidateLatency(BaseModel):
    """The candidate's scoring time per item, measured off the request path in chunks."""

    items: int
    mean_us: float | None
    histogram: list[LatencyBin]


class CandidateSide(ShadowSide):
    """The candidate's answers, and how long it took to give them."""

    latency: CandidateLatency


class ShadowReport(BaseModel):
    """What a shadow run has compared since it started, on every worker and replica."""

    model_version: str = Field(description="The candidate.")
    active_version: str = Field(description="The version it is compared with.")
    sample_rate: float
    status: Literal["running", "ended"]
    started_at: datetime
    started_by: str
    ended_at: datetime | None
    end_reason: str | None = Field(
        description="`stopped by <client>`, `activated`, `<version> was activated` or "
        "`promoted automatically: ...`."
    )
    items_compared: int
    agreement_rate: float | None = Field(
        description="Share of the compared items both versions put in the same category."
    )
    flips_total: int = Field(description="How many (active, candidate) category pairs differ.")
    flips: list[ShadowFlip] = Field(description="The 50 largest flips, largest first.")
    active: ShadowSide
    candidate: CandidateSide
