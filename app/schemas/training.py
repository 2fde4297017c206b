"""Shapes of the retraining, dataset, model-registry and feedback routes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    computed_field,
    field_validator,
)

from app.core.review import FeedbackStatus
from app.core.text import validate_category_name
from app.ml.algorithms import ALGORITHMS, DEFAULT_ALGORITHM, describe_tunable_params
from app.schemas.prediction import ProductName

Algorithm = StrEnum("Algorithm", {name: name for name in ALGORITHMS})  # type: ignore[misc]
CategoryName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
]


class TrainingRequest(BaseModel):
    """Train a new version from a CSV in the data directory (plus base data and feedback)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"new_data_path": "data/new_training_data.csv"},
                {
                    "new_data_path": "uploads/20261124-101500-3f9a1c2e.csv",
                    "algorithm": "logistic_regression",
                    "params": {"clf__C": [1.0, 10.0, 30.0]},
                    "include_base_data": True,
                    "activate": False,
                },
            ]
        },
    )

    new_data_path: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="CSV inside the data directory (a leading `data/` is accepted).",
    )
    algorithm: Algorithm = Field(
        default=Algorithm(DEFAULT_ALGORITHM), description="Classifier; docs/model.md compares them."
    )
    params: dict[str, Any] | None = Field(
        default=None,
        description="Hyper-parameters by scikit-learn name. A list is a grid of candidates "
        "searched with 3-fold cross-validated macro-F1 (at most 60 combinations); a single "
        "value is fixed (an n-gram range `[1, 2]` is one value, `[[1, 1], [1, 2]]` a grid). "
        "Only these names, with these values, are accepted (anything else is a 422):\n\n"
        + describe_tunable_params(),
    )
    include_base_data: bool = Field(
        default=True, description="Add the rows the active version was trained on."
    )
    include_feedback: bool = Field(default=True, description="Add every stored feedback label.")
    activate: bool = Field(default=True, description="Serve the new version when it is trained.")
    test_size: float = Field(default=0.2, ge=0.05, le=0.5, description="Stratified hold-out share.")
    refit: bool = Field(
        default=True,
        strict=True,
        description="After measuring on the hold-out, fit the same pipeline on every row and "
        "serve that one (false: serve the pipeline fitted without the hold-out).",
    )


class TrainingAccepted(BaseModel):
    """A job was created; poll `status_url`."""

    message: str
    new_model_version: str
    data_path: str | None
    job_id: str
    status_url: str
    warnings: list[str] = Field(
        default_factory=list,
        description="Categories left out of this job because they have too few rows.",
    )


# Stored options the API does not show: the data file's absolute path on the server,
# and params and grid, which `params` already shows merged.
_SERVER_ONLY_OPTIONS = ("data_file", "params", "grid")


class TrainingJobOut(BaseModel):
    """A training job's state as any worker reports it."""

    model_config = ConfigDict(from_attributes=True)

    job_id: str
    status: str = Field(
        description="queued, running, succeeded or failed (a cancelled or timed-out job is "
        "failed, and `error` says so)"
    )
    stage: str | None
    percent: float
    fits_done: int | None = Field(
        default=None,
        description="Independent fits finished (calibration folds and final fits, of every "
        "grid candidate); null for algorithms that do not count theirs",
    )
    fits_total: int | None = Field(default=None, description="Fits the job plans in all")
    elapsed_seconds: float | None = Field(
        default=None, description="Seconds since the job started (its duration once finished)"
    )
    eta_seconds: float | None = Field(
        default=None,
        description="Seconds until the remaining fits should be done at the rate so far; the "
        "evaluation and saving after them usually add a few per cent",
    )
    source: str = Field(description="api or cli")
    requested_by: str | None
    new_model_version: str
    base_version: str | None
    data_path: str | None
    algorithm: str
    params: dict[str, Any]
    options: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    data_rows: int | None
    metrics: dict[str, Any] | None
    best_params: dict[str, Any] | None
    cv_results: list[dict[str, Any]] | None
    produced_version: str | None
    activated: bool
    message: str | None
    error: str | None
    warnings: list[str] = Field(
        default_factory=list,
        description="Categories left out of this job because they have too few rows.",
    )

    @field_validator("options")
    @classmethod
    def _hide_server_only_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in options.items() if k not in _SERVER_ONLY_OPTIONS}


class TrainingJobList(BaseModel):
    """Recent jobs, newest first."""

    jobs: list[TrainingJobOut]


class DatasetOut(BaseModel):
    """A stored upload, ready to pass as `new_data_path`."""

    model_config = ConfigDict(from_attributes=True)

    data_path: str
    rows: int
    categories: int
    class_counts: dict[str, int]
    dropped_rows: int
    size_bytes: int
    sha256: str


class ModelSummary(BaseModel):
    """One registered version."""

    model_config = ConfigDict(from_attributes=True)

    version: str
    algorithm: str
    is_active: bool
    created_at: datetime
    activated_at: datetime | None
    data_rows: int
    classes: list[str]
    accuracy: float | None
    macro_f1: float | None
    ece: float | None


class ModelList(BaseModel):
    """Every version, newest first."""

    models: list[ModelSummary]


class ModelDetail(ModelSummary):
    """A version with everything the registry records about it."""

    sha256: str
    params: dict[str, Any]
    best_params: dict[str, Any] | None
    metrics: dict[str, Any]
    data_sha256: str
    data_sources: list[dict[str, Any]]
    library_versions: dict[str, str]

    @computed_field(  # type: ignore[prop-decorator]
        description="Predictions scored below this need review (unless a request or "
        "REVIEW_THRESHOLD says otherwise): the lowest score at which 95 % of the "
        "hold-out is right. `metrics.review` has the whole coverage-precision curve."
    )
    @property
    def review_threshold(self) -> float | None:
        """The version's own review threshold; None for versions trained before it existed."""
        review = self.metrics.get("review")
        threshold = review.get("threshold") if isinstance(review, dict) else None
        return float(threshold) if isinstance(threshold, int | float) else None


class ActiveModel(BaseModel):
    """The classic `/status`: whether a model is trained, and which one serves."""

    trained: bool
    version: str | None = None
    serving_version: str | None = Field(
        default=None, description="What this worker serves now (equal to `version` within 5 s)."
    )
    algorithm: str | None = None
    best_params: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    classes: list[str] | None = None
    created_at: datetime | None = None
    activated_at: datetime | None = None
    message: str | None = None


# Category text reaches CSV snapshots (opened in spreadsheets) and metric labels:
# validate_category_name refuses formulas and invisible characters. The raw cap
# bounds the NFKC work before the real 100-character limit applies.
SafeCategoryName = Annotated[
    str, StringConstraints(max_length=400), AfterValidator(validate_category_name)
]


class FeedbackIn(BaseModel):
    """A ground-truth label for a product name, and the prediction it corrects."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "product_name": "frisian flag kental manis 370g",
                    "category": "Susu",
                    "predicted_category": "Produk Susu Olahan",
                    "model_version": "v1.0.0",
                }
            ]
        },
    )

    product_name: ProductName
    category: SafeCategoryName = Field(
        description="One of the active model's classes or an accepted feedback category."
    )
    predicted_category: SafeCategoryName | None = None
    model_version: str | None = Field(default=None, max_length=32)
    new_category: bool = Field(
        default=False,
        description="Add `category` as a new class (needs the `train` scope; 403 otherwise).",
    )


class FeedbackReviewRequest(BaseModel):
    """Accept a feedback row, optionally correcting its label."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{}, {"category": "Susu"}]},
    )

    category: SafeCategoryName | None = Field(
        default=None, description="The corrected label; omitted: keep the proposed one."
    )
    new_category: bool = Field(
        default=False, description="Allow a category no model or accepted feedback knows yet."
    )


class FeedbackOut(BaseModel):
    """A stored feedback label and its review state."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    product_name: str
    category: str
    predicted_category: str | None
    model_version: str | None
    client_id: str
    created_at: datetime
    status: FeedbackStatus = Field(
        description="proposed (not trained on), accepted (trained on) or rejected"
    )
    reviewed_by: str | None = Field(
        description="Client that accepted or rejected it; null when accepted by "
        "FEEDBACK_AUTO_ACCEPT or stored before review existed."
    )
    reviewed_at: datetime | None


class FeedbackList(BaseModel):
    """Feedback in arrival order."""

    total: int
    items: list[FeedbackOut]
