"""Exact, low-latency scorer derived from a fitted pipeline (which stays the source of truth).

A prediction is three steps, one module each: `fast_features` turns a name into a
sparse TF-IDF row, one dense matrix product applies every linear stage that
`fast_compile` folded together, and a head from `fast_heads` turns the outputs
into probabilities with the pipeline's own arithmetic. A pipeline the scorer
cannot reproduce exactly raises `UnsupportedPipelineError` at compile time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.pipeline import Pipeline

from app.ml.fast_compile import ScorerParts, UnsupportedPipelineError, compile_pipeline

__all__ = ["FastScorer", "UnsupportedPipelineError"]


class FastScorer:
    """Pure-Python/numpy re-implementation of ``pipeline.predict_proba`` for supported shapes."""

    def __init__(self, parts: ScorerParts) -> None:
        self._features = parts.features
        self._weights = parts.weights
        self._bias = parts.bias
        self._head = parts.head
        self._n_features = parts.weights.shape[0]
        self.classes: np.ndarray = parts.classes

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline) -> FastScorer:
        """Derive a scorer from a fitted ``features -> clf`` Pipeline or raise if unsupported."""
        return cls(compile_pipeline(pipeline))

    def predict_proba_one(self, name: str) -> np.ndarray:
        """Class probabilities for one name (1-D, ``classes`` order)."""
        cols, values, _ = self._features.rows((name,))
        # Gathering ~100 weight rows beats building a sparse matrix for one name.
        z = values @ self._weights[cols] + self._bias
        return self._head.one(z)

    def predict_proba_many(self, names: Sequence[str]) -> np.ndarray:
        """Class probabilities for many names (2-D, rows follow ``names``)."""
        n = len(names)
        if n == 0:
            return np.zeros((0, self.classes.shape[0]))
        cols, values, indptr = self._features.rows(names)
        x = sp.csr_matrix((values, cols, indptr), shape=(n, self._n_features))
        z = np.asarray(x @ self._weights) + self._bias
        return self._head(z)
