"""Exact, low-latency scorer derived from a fitted pipeline (which stays the source of truth).

A prediction is three steps, one module each: `fast_features` turns a name into a
sparse TF-IDF row, one matrix product applies every linear stage that
`fast_compile` folded together, and a head from `fast_heads` turns the outputs
into probabilities with the pipeline's own arithmetic. A pipeline the scorer
cannot reproduce exactly raises `UnsupportedPipelineError` at compile time.

This module and the three it scores with import numpy alone: a serving worker
that loads a stored scorer (`scorer_bundle`) never imports scikit-learn or SciPy,
which would cost it about 90 MB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from app.ml.explain import Explainer, Explanation
from app.ml.fast_features import Featurizer
from app.ml.fast_heads import Head
from app.ml.scope import ScopeModel

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

__all__ = [
    "FAST_PATH_TOLERANCE",
    "FLOAT32_TOLERANCE",
    "FastScorer",
    "Precision",
    "ScorerParts",
    "UnsupportedPipelineError",
]

# The fast path must reproduce predict_proba to this absolute tolerance.
FAST_PATH_TOLERANCE = 1e-9
# ... and to this one when its weights are stored in float32 (SCORER_PRECISION).
# Rounding each weight to 24 bits moves a class output by about 1e-7 of the sum
# of |weight x feature| it adds up, so probabilities move by about 1e-7; 1e-5 leaves
# a margin, and `fast_path_check` also requires that no training or hold-out
# row changes its predicted category.
FLOAT32_TOLERANCE = 1e-5

# The dtype a stored scorer keeps its weights in (SCORER_PRECISION).
Precision = Literal["float64", "float32"]


class UnsupportedPipelineError(ValueError):
    """Raised when a pipeline contains a step the fast path cannot reproduce exactly."""


@dataclass(frozen=True)
class ScorerParts:
    """Everything a FastScorer needs, read from one fitted pipeline or one stored scorer."""

    features: Featurizer
    # (n_features, n_outputs), C-contiguous float64 or float32; may be memory-mapped.
    # Products with float64 feature values are computed in float64 either way.
    weights: np.ndarray
    bias: np.ndarray  # (n_outputs,)
    head: Head
    classes: np.ndarray  # labels as str, in predict_proba column order
    # The out-of-scope test; None for pipelines fitted without one.
    scope: ScopeModel | None = None


class FastScorer:
    """Pure numpy re-implementation of ``pipeline.predict_proba`` for supported shapes."""

    def __init__(self, parts: ScorerParts) -> None:
        self.parts = parts
        self._features = parts.features
        self._weights = parts.weights
        self._bias = parts.bias
        self._head = parts.head
        self._scope = parts.scope
        self._explainer: Explainer | None = None
        self.classes: np.ndarray = parts.classes

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline) -> FastScorer:
        """Derive a scorer from a fitted ``features -> clf`` Pipeline or raise if unsupported."""
        # Imported here: compiling reads scikit-learn objects, serving never does.
        from app.ml.fast_compile import compile_pipeline

        return cls(compile_pipeline(pipeline))

    def predict_proba_one(self, name: str) -> np.ndarray:
        """Class probabilities for one name (1-D, ``classes`` order)."""
        return self.score_one(name)[0]

    def score_one(self, name: str) -> tuple[np.ndarray, float]:
        """One name's class probabilities (1-D) and its scope factor (1.0 when in scope)."""
        cols, values, _, coverage = self._features.rows((name,))
        # Gathering ~100 weight rows beats building a sparse matrix for one name.
        z = values @ self._weights[cols] + self._bias
        return self._scoped_one(self._head.one(z), coverage)

    def _scoped_one(self, proba: np.ndarray, coverage: np.ndarray) -> tuple[np.ndarray, float]:
        if self._scope is None:
            return proba, 1.0
        factor = float(self._scope.factor(coverage)[0])
        proba *= factor
        return proba, factor

    def explain_one(self, name: str) -> tuple[np.ndarray, float, Explanation]:
        """`score_one` plus the terms that raised and lowered the predicted category's score."""
        explainer = self._explainer
        if explainer is None:
            explainer = self._explainer = Explainer(
                self._features.blocks, self._weights, self._head.evidence()
            )
        docs: list[str] = []
        cols, values, _, coverage = self._features.rows((name,), docs)
        rows = self._weights[cols]
        proba, factor = self._scoped_one(self._head.one(values @ rows + self._bias), coverage)
        # No char_wb block, no document needed: word n-grams name themselves.
        doc = docs[0] if docs else ""
        explanation = explainer.explain(doc, cols, values, rows, proba, self.classes)
        return proba, factor, explanation

    def predict_proba_many(self, names: Sequence[str]) -> np.ndarray:
        """Class probabilities for many names (2-D, rows follow ``names``)."""
        return self.score_many(names)[0]

    def score_many(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities (2-D, rows follow ``names``) and each name's scope factor."""
        n = len(names)
        if n == 0:
            return np.zeros((0, self.classes.shape[0])), np.ones(0)
        weights = self._weights
        z = np.zeros((n, weights.shape[1]))
        batch = self._features.batch(names)
        if batch is None:
            cols, values, indptr, coverage = self._features.rows(names)
            _add_rows(z, weights, cols, values, np.asarray(indptr, dtype=np.intp))
        else:
            coverage = batch.coverage
            _add_rows(z, weights, batch.columns, batch.values, batch.indptr)
            for sums in batch.word_sums:
                # Each distinct word's idf-weighted weight rows once, then per token.
                per_word = np.zeros((sums.starts.shape[0] - 1, weights.shape[1]))
                _add_rows(per_word, weights, sums.columns, sums.idf, sums.starts)
                _add_rows(z, per_word, sums.words, sums.scales, sums.token_starts)
        z += self._bias
        proba = self._head(z)
        if self._scope is None:
            return proba, np.ones(n)
        factor = self._scope.factor(coverage)
        proba *= factor[:, None]
        return proba, factor


def _add_rows(
    out: np.ndarray, source: np.ndarray, index: np.ndarray, scale: np.ndarray, starts: np.ndarray
) -> None:
    """``out[i] += sum(scale[j] * source[index[j]])`` over ``j`` in ``starts[i]:starts[i + 1]``."""
    n = out.shape[0]
    # Each row sums its own scaled source rows. In chunks, so a batch never
    # materialises more than _GATHER_FLOATS at once; reduceat instead of a
    # sparse product, which would need SciPy.
    per_chunk = max(1, _GATHER_FLOATS // max(1, source.shape[1]))
    first = 0
    while first < n:
        last = first + 1
        while last < n and starts[last + 1] - starts[first] <= per_chunk:
            last += 1
        begin, end = starts[first], starts[last]
        if end > begin:
            gathered = source[index[begin:end]] * scale[begin:end, None]
            offsets = starts[first:last] - begin
            rows = np.flatnonzero(starts[first + 1 : last + 1] > starts[first:last])
            # reduceat sums [offset_i, offset_i+1); an empty row would get the
            # next row's first value, so only non-empty rows are reduced.
            out[first + rows] += np.add.reduceat(gathered, offsets[rows], axis=0)
        first = last


# Largest gather of weight rows one batch step holds (1 MB of float64): small
# enough that the gathered rows and their products stay in the CPU cache, where
# 8 MB steps took twice as long per name.
_GATHER_FLOATS = 1 << 17
