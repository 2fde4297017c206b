"""One check, used by training and by serving, that the fast path reproduces predict_proba."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.pipeline import Pipeline

from app.ml.fast_path import FastScorer, UnsupportedPipelineError

# The fast path must reproduce predict_proba to this absolute tolerance.
FAST_PATH_TOLERANCE = 1e-9


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
    diff = np.abs(scorer.predict_proba_many(texts) - pipeline.predict_proba(texts))
    worst = float(diff.max()) if diff.size else 0.0
    return FastPathCheck(scorer=scorer, max_abs_diff=worst)
