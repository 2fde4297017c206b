"""Request and response shapes of the prediction routes."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

from app.ml.preprocessing import nfkc_length, normalize_product_name

MAX_NAME_CHARS = 300
MAX_BATCH_NAMES = 1000


def _bounded_name(name: str) -> str:
    # The cap applies to the text the model reads, after NFKC: one character can
    # expand to eighteen (U+FDFA), and scoring cost follows the expanded length.
    length = nfkc_length(name, MAX_NAME_CHARS)
    if length > MAX_NAME_CHARS:
        raise PydanticCustomError(
            "string_too_long",
            "String should have at most {max_length} characters after Unicode NFKC normalisation",
            {"max_length": MAX_NAME_CHARS},
        )
    # A name of only punctuation or symbols has no features; any answer would be
    # the class prior dressed up as a prediction.
    if not normalize_product_name(name):
        raise ValueError("must contain at least one letter or digit")
    return name


ProductName = Annotated[
    str,
    # The raw cap first: it bounds what the NFKC check below can cost.
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_CHARS),
    AfterValidator(_bounded_name),
]


MinScore = Annotated[
    float | None,
    Field(
        default=None,
        ge=0,
        le=1,
        # Strict: true/false or "0.5" are mistakes, not scores.
        strict=True,
        description="Flag `needs_review` below this score for this request, instead of "
        "the deployment's REVIEW_THRESHOLD or the model version's own threshold.",
    ),
]

_IN_SCOPE = (
    "False when the name's words are unlike anything the model was trained on: its "
    "scores are then lowered, since no category of the model may be right."
)
_NEEDS_REVIEW = (
    "True when the name is out of scope or `prediction_score` is below the review "
    "threshold (`min_score`, else REVIEW_THRESHOLD, else the model version's own)."
)


class PredictionRequest(BaseModel):
    """One product name to categorise."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"product_name": "susu ultra coklat 250ml", "top_k": 3}]}
    )

    product_name: ProductName = Field(
        description="1-300 characters after trimming, also after Unicode NFKC normalisation."
    )
    top_k: int = Field(default=1, ge=1, le=20, description="How many ranked categories to return.")
    min_score: MinScore = None
    explain: bool = Field(
        default=False,
        strict=True,
        description="Add `explanation`: the terms of the name that raised and lowered "
        "the predicted category's score.",
    )


class BatchPredictionRequest(BaseModel):
    """Up to 1,000 product names, answered in input order."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"product_names": ["susu ultra coklat 250ml", "indomie goreng 85g"]}]
        }
    )

    product_names: list[ProductName] = Field(min_length=1, max_length=MAX_BATCH_NAMES)
    min_score: MinScore = None

    def normalized_chars(self) -> int:
        """Total characters of the names after NFKC (what MAX_BATCH_CHARS bounds)."""
        # Each name already passed its own cap, so this is exact and cheap.
        return sum(nfkc_length(name, MAX_NAME_CHARS) for name in self.product_names)


class CategoryScore(BaseModel):
    """A category with its calibrated probability."""

    category: str
    score: float = Field(ge=0, le=1)


class TermContribution(BaseModel):
    """A word or word pair of the name and how much it moved the score (logit units)."""

    model_config = ConfigDict(from_attributes=True)

    term: str
    contribution: float


class Explanation(BaseModel):
    """Why the name got its category, read from the linear model's weights."""

    model_config = ConfigDict(from_attributes=True)

    category: str
    supporting: list[TermContribution] = Field(
        description="Terms that raised the category's score most, strongest first."
    )
    opposing: list[TermContribution] = Field(
        description="Terms that lowered it most, strongest first."
    )


class PredictionResponse(BaseModel):
    """The most likely category, its probability, and the top-k ranking."""

    predicted_category: str
    prediction_score: float = Field(ge=0, le=1)
    model_version: str
    top_k: list[CategoryScore]
    in_scope: bool = Field(description=_IN_SCOPE)
    needs_review: bool = Field(description=_NEEDS_REVIEW)
    explanation: Explanation | None = Field(
        default=None,
        description="Present when the request set `explain` (and the version has a fast "
        "scorer, as every version trained by this release does).",
    )


class BatchItem(BaseModel):
    """One entry of a batch answer."""

    product_name: str
    predicted_category: str
    prediction_score: float = Field(ge=0, le=1)
    in_scope: bool = Field(description=_IN_SCOPE)
    needs_review: bool = Field(description=_NEEDS_REVIEW)


class BatchPredictionResponse(BaseModel):
    """Predictions in the order of the request's names."""

    model_version: str
    predictions: list[BatchItem]
