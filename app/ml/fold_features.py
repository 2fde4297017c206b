"""Each cross-validation fold's TF-IDF matrices as if the vectorizers were fitted on that fold.

Out-of-fold scores are only honest when the held-out rows are featurised by a
vocabulary and IDF that never saw them: with the full training vocabulary, a
held-out name's own rare words take part of its L2 norm while carrying no
weight, so its scores come out lower than a truly new name's and a calibration
map fitted on them is over-confident on real traffic. Refitting every
vectorizer per fold would analyse every name five more times; instead each
name is analysed once into raw counts, and a fold's vocabulary (min_df,
max_df), IDF, sublinear tf, norm and FeatureUnion weight are applied to the
columns with sparse arithmetic. The result equals ``clone(features).fit(fold)``
column for column (tests/test_calibration_folds.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from numbers import Integral
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.pipeline import FeatureUnion
from sklearn.preprocessing import normalize

__all__ = ["FoldFeaturesUnsupported", "check_fold_features", "doc_count", "fold_matrices"]

Fold = tuple[np.ndarray, np.ndarray]


class FoldFeaturesUnsupported(ValueError):
    """The features use an option the fold arithmetic does not reproduce."""


def fold_matrices(
    features: Any, texts: Sequence[str], folds: Sequence[Fold]
) -> Iterator[tuple[np.ndarray, np.ndarray, sp.csr_matrix, sp.csr_matrix]]:
    """Yield ``(fit_rows, held_rows, X_fit, X_held)`` per fold, featurised as described above."""
    blocks = [(vec, weight, _counts(vec, texts)) for vec, weight in _vectorizers(features)]
    for fit_rows, held in folds:
        fit_parts: list[sp.csr_matrix] = []
        held_parts: list[sp.csr_matrix] = []
        for vec, weight, counts in blocks:
            fitted, held_part = _fold_block(vec, counts, fit_rows, held)
            fit_parts.append(fitted * weight)
            held_parts.append(held_part * weight)
        yield fit_rows, held, sp.hstack(fit_parts).tocsr(), sp.hstack(held_parts).tocsr()


def check_fold_features(features: Any) -> None:
    """Raise FoldFeaturesUnsupported unless `fold_matrices` can reproduce these features."""
    _vectorizers(features)


def _vectorizers(features: Any) -> list[tuple[TfidfVectorizer, float]]:
    if isinstance(features, TfidfVectorizer):
        pairs = [(features, 1.0)]
    elif isinstance(features, FeatureUnion):
        weights = features.transformer_weights or {}
        pairs = [
            (vec, float(weights.get(name, 1.0)))
            for name, vec in features.transformer_list
            if vec not in ("drop", None)
        ]
    else:
        raise FoldFeaturesUnsupported("features must be a TfidfVectorizer or a FeatureUnion")
    for vec, _ in pairs:
        if type(vec) is not TfidfVectorizer:
            raise FoldFeaturesUnsupported(f"{type(vec).__name__} is not a TfidfVectorizer")
        if vec.vocabulary is not None:
            raise FoldFeaturesUnsupported("a fixed vocabulary is not supported")
    return pairs


def _counts(vec: TfidfVectorizer, texts: Sequence[str]) -> sp.csr_matrix:
    """Raw n-gram counts of every text over every term (the one analysis pass)."""
    counter = CountVectorizer(analyzer=vec.build_analyzer(), dtype=np.float64)
    matrix: sp.csr_matrix = counter.fit_transform(texts).tocsr()
    matrix.sort_indices()
    return matrix


def _fold_block(
    vec: TfidfVectorizer, counts: sp.csr_matrix, fit_rows: np.ndarray, held: np.ndarray
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """One vectorizer's matrices for a fold: its vocabulary, then TfidfTransformer's steps."""
    fit_counts = counts[fit_rows]
    df = np.bincount(fit_counts.indices, minlength=counts.shape[1])
    n_docs = fit_rows.size
    columns = _fold_vocabulary(vec, fit_counts, df, n_docs)
    if columns.size == 0:
        raise ValueError("a fold has no terms left after min_df and max_df")
    fitted = _tfidf(vec, fit_counts[:, columns], df[columns], n_docs)
    held_part = _tfidf(vec, counts[held][:, columns], df[columns], n_docs)
    return fitted, held_part


def _fold_vocabulary(
    vec: TfidfVectorizer, fit_counts: sp.csr_matrix, df: np.ndarray, n_docs: int
) -> np.ndarray:
    """The columns a vectorizer fitted on the fold's rows would keep, in its column order.

    As CountVectorizer does: the fold's own terms (sorted, as the columns of
    `fit_counts` are), those within min_df and max_df, then at most max_features
    of them by total count, ties broken by the same argsort on the same array.
    """
    present = np.flatnonzero(df > 0)
    df_present = df[present]
    kept = (df_present >= doc_count(vec.min_df, n_docs)) & (
        df_present <= doc_count(vec.max_df, n_docs)
    )
    limit = vec.max_features
    if limit is not None and kept.sum() > limit:
        # As floats, as CountVectorizer sums them: argsort's ties depend on the dtype.
        # Integer counts in float64 sum exactly whatever their order.
        data = np.ones_like(fit_counts.data) if vec.binary else fit_counts.data
        totals = np.bincount(fit_counts.indices, weights=data, minlength=df.size)[present]
        best = (-totals[kept]).argsort()[:limit]
        limited = np.zeros(kept.size, dtype=bool)
        limited[np.flatnonzero(kept)[best]] = True
        kept = limited
    columns: np.ndarray = present[kept]
    return columns


def _tfidf(
    vec: TfidfVectorizer, counts: sp.csr_matrix, df: np.ndarray, n_docs: int
) -> sp.csr_matrix:
    matrix = counts.astype(np.float64, copy=True).tocsr()
    if vec.binary:
        matrix.data[:] = 1.0
    elif vec.sublinear_tf:
        np.log(matrix.data, out=matrix.data)
        matrix.data += 1.0
    if vec.use_idf:
        smooth = int(bool(vec.smooth_idf))
        idf = np.log((n_docs + smooth) / (df + smooth)) + 1.0
        matrix.data *= idf[matrix.indices]
    if vec.norm is not None:
        matrix = normalize(matrix, norm=vec.norm, copy=False)
    return matrix


def doc_count(limit: float, n_docs: int) -> float:
    """A min_df/max_df limit as a document count for `n_docs` documents."""
    # CountVectorizer's reading of min_df/max_df: an integer is a count, a float a share.
    return float(limit) if isinstance(limit, Integral) else float(limit) * n_docs
