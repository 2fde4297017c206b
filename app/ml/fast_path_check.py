"""One check, used by training and by serving, that the fast path reproduces predict_proba.

`export_scorer` stores a checked scorer with its version, so serving workers can
load it without the pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline

from app.ml.evaluation import EVALUATION_CHUNK_ROWS
from app.ml.fast_path import (
    FAST_PATH_TOLERANCE,
    FLOAT32_TOLERANCE,
    FastScorer,
    Precision,
    ScorerParts,
    UnsupportedPipelineError,
)
from app.ml.scorer_bundle import BundleError, WrittenBundle, write_bundle

logger = logging.getLogger(__name__)

# Rows a stored scorer must reproduce at every load: enough to touch most classes
# and both feature blocks, few enough to check in milliseconds.
CHECK_ROWS = 200
_UNFAMILIAR_ROWS = 20


@dataclass(frozen=True)
class FastPathCheck:
    """The compiled scorer and how far it strays from predict_proba on sample texts."""

    scorer: FastScorer | None
    # None when the pipeline cannot be compiled; 0.0 for an empty sample.
    max_abs_diff: float | None
    unsupported_reason: str | None = None

    @property
    def exact(self) -> bool:
        """True when the scorer exists and agrees with the pipeline within the tolerance."""
        return self.max_abs_diff is not None and self.max_abs_diff <= FAST_PATH_TOLERANCE


def check_fast_path(pipeline: Pipeline, sample: Callable[[], Sequence[str]]) -> FastPathCheck:
    """Compile `pipeline` and measure the largest |fast path - predict_proba| over `sample()`.

    `sample` is called only once the pipeline compiles, so an unsupported pipeline
    costs no read of the sample rows.
    """
    try:
        scorer = FastScorer.from_pipeline(pipeline)
    except UnsupportedPipelineError as exc:
        return FastPathCheck(scorer=None, max_abs_diff=None, unsupported_reason=str(exc))
    texts = list(sample())
    worst = 0.0
    # In chunks, as app.ml.evaluation does: both answers are rows x categories dense.
    for start in range(0, len(texts), EVALUATION_CHUNK_ROWS):
        chunk = texts[start : start + EVALUATION_CHUNK_ROWS]
        diff = np.abs(scorer.predict_proba_many(chunk) - pipeline.predict_proba(chunk))
        worst = max(worst, float(diff.max()))
    return FastPathCheck(scorer=scorer, max_abs_diff=worst)


def export_scorer(
    pipeline: Pipeline,
    model_dir: Path,
    version: str,
    texts: Sequence[str],
    precision: Precision = "float64",
) -> WrittenBundle | None:
    """Store `pipeline`'s fast scorer for `version`, or None when it cannot stand in for it.

    The check rows are the first `CHECK_ROWS` of `texts` plus the class names;
    the stored scorer must reproduce the pipeline on them now and at every load.
    With `precision` float32 the weights are stored in half the bytes, but only
    if that changes no row of `texts` (the version's training and hold-out rows)
    to another category; otherwise float64 is stored and the reason logged.
    """
    # Reversed names have words the vocabulary lacks, so the scope test is checked too.
    unfamiliar = [text[::-1] for text in texts[:_UNFAMILIAR_ROWS]]
    check_texts = list(
        dict.fromkeys([*texts[:CHECK_ROWS], *unfamiliar, *map(str, pipeline.classes_)])
    )
    check = check_fast_path(pipeline, lambda: check_texts)
    if check.scorer is None or not check.exact:
        logger.warning(
            "no stored scorer for this version; workers will load the pipeline",
            extra={"version": version, "reason": check.unsupported_reason or "inexact"},
        )
        return None
    parts = check.scorer.parts
    if precision == "float32":
        parts = _float32_parts(check.scorer, texts, version) or parts
    try:
        return write_bundle(
            parts, model_dir, version, check_texts, pipeline.predict_proba(check_texts)
        )
    except BundleError as exc:
        logger.warning(
            "no stored scorer for this version; workers will load the pipeline",
            extra={"version": version, "reason": str(exc)},
        )
        return None


def _float32_parts(exact: FastScorer, texts: Sequence[str], version: str) -> ScorerParts | None:
    """`exact`'s parts with float32 weights, or None if rounding changes an answer."""
    parts = replace(exact.parts, weights=exact.parts.weights.astype(np.float32))
    reference = exact.predict_proba_many(texts)
    rounded = FastScorer(parts).predict_proba_many(texts)
    worst = float(np.abs(rounded - reference).max(initial=0.0))
    changed = int(np.count_nonzero(rounded.argmax(axis=1) != reference.argmax(axis=1)))
    if changed or not worst <= FLOAT32_TOLERANCE:
        logger.warning(
            "float32 weights would change answers; storing float64",
            extra={"version": version, "max_abs_diff": worst, "changed_rows": changed},
        )
        return None
    logger.info(
        "float32 weights checked",
        extra={"version": version, "rows": len(texts), "max_abs_diff": worst},
    )
    return parts
