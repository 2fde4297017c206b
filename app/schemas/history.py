"""Query and response shapes of the prediction log routes (history, statistics, export)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

# Statistics and exports cover at most this long a range, so one request cannot
# ask the database to aggregate the table's whole life.
MAX_RANGE_DAYS = 400
MAX_PAGE = 500

_Category = Annotated[str, StringConstraints(min_length=1, max_length=100)]
_Version = Annotated[str, StringConstraints(min_length=1, max_length=32)]


class LogFilters(BaseModel):
    """Filters shared by history, statistics and export (query parameters)."""

    # Unknown query parameters are refused, so a misspelt filter is not silently ignored.
    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime | None = Field(
        default=None, description="Only predictions at or after this instant (ISO 8601, with zone)."
    )
    until: AwareDatetime | None = Field(
        default=None, description="Only predictions before this instant (ISO 8601, with zone)."
    )
    category: _Category | None = Field(default=None, description="Only this predicted category.")
    model_version: _Version | None = Field(default=None, description="Only this model version.")
    needs_review: bool | None = Field(
        default=None, description="Only predictions flagged (true) or not flagged (false)."
    )


class HistoryQuery(LogFilters):
    """A page of history: filters, page size and the cursor of the previous page."""

    limit: int = Field(default=100, ge=1, le=MAX_PAGE, description="Rows per page.")
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="`next_cursor` of the previous page; omit for the newest rows."
    )


class AdminLogFilters(LogFilters):
    """The admin's filters: any client's rows, or one client's."""

    client_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        default=None, description="Only this client's predictions."
    )


class AdminHistoryQuery(HistoryQuery):
    """A page of any client's history."""

    client_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        default=None, description="Only this client's predictions."
    )


class LoggedPrediction(BaseModel):
    """One recorded prediction."""

    id: int
    created_at: datetime
    client_id: str
    model_version: str
    product_name: str
    predicted_category: str
    prediction_score: float
    needs_review: bool
    in_scope: bool
    request_id: str | None
    # Position in its batch; 0 for a single prediction.
    item: int
    latency_ms: float


class HistoryPage(BaseModel):
    """Predictions newest first, and the cursor of the next (older) page."""

    items: list[LoggedPrediction]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null when this is the last one."
    )


class GroupStats(BaseModel):
    """Predictions of one group: how many, their mean score, and how many need review."""

    count: int
    mean_score: float
    review_rate: float
    out_of_scope_rate: float


class DayStats(GroupStats):
    """One UTC day."""

    date: date


class CategoryStats(GroupStats):
    """One predicted category."""

    category: str


class VersionStats(GroupStats):
    """One model version."""

    model_version: str


class ClientStats(GroupStats):
    """One client (admin statistics only)."""

    client_id: str


class PredictionStats(BaseModel):
    """Predictions in a time range: totals, and per day, category and model version."""

    since: datetime
    until: datetime
    total: int
    mean_score: float | None
    review_rate: float | None
    out_of_scope_rate: float | None
    per_day: list[DayStats]
    per_category: list[CategoryStats]
    per_model_version: list[VersionStats]


class AdminStats(BaseModel):
    """Service-wide: predictions (as in /predictions/stats, plus per client), training
    jobs by status, registered clients and the active model version."""

    predictions: PredictionStats
    per_client: list[ClientStats]
    training_jobs: dict[str, int]
    clients: dict[str, int]
    active_model_version: str | None
