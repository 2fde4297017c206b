"""Request and response shapes of the prediction routes."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.ml.preprocessing import normalize_product_name


def _has_content(name: str) -> str:
    # A name of only punctuation or symbols has no features; any answer would be
    # the class prior dressed up as a prediction.
    if not normalize_product_name(name):
        raise ValueError("must contain at least one letter or digit")
    return name


ProductName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=300),
    AfterValidator(_has_content),
]


class PredictionRequest(BaseModel):
    """One product name to categorise."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"product_name": "susu ultra coklat 250ml", "top_k": 3}]}
    )

    product_name: ProductName = Field(description="1-300 characters after trimming.")
    top_k: int = Field(default=1, ge=1, le=20, description="How many ranked categories to return.")


class BatchPredictionRequest(BaseModel):
    """Up to 1,000 product names, answered in input order."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"product_names": ["susu ultra coklat 250ml", "indomie goreng 85g"]}]
        }
    )

    product_names: list[ProductName] = Field(min_length=1, max_length=1000)


class CategoryScore(BaseModel):
    """A category with its calibrated probability."""

    category: str
    score: float = Field(ge=0, le=1)


class PredictionResponse(BaseModel):
    """The most likely category, its probability, and the top-k ranking."""

    predicted_category: str
    prediction_score: float = Field(ge=0, le=1)
    model_version: str
    top_k: list[CategoryScore]


class BatchItem(BaseModel):
    """One entry of a batch answer."""

    product_name: str
    predicted_category: str
    prediction_score: float = Field(ge=0, le=1)


class BatchPredictionResponse(BaseModel):
    """Predictions in the order of the request's names."""

    model_version: str
    predictions: list[BatchItem]
