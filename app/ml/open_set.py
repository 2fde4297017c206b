"""The fitted pipeline that knows its scope: `OpenSetPipeline` and the coverage it measures.

`OpenSetPipeline` is a scikit-learn Pipeline (same steps, same parameter names)
whose ``predict_proba`` is the classifier's probabilities times the
`app.ml.scope.ScopeModel` factor of each name. It stays the source of truth:
the fast path reproduces it within 1e-9, the scope test included.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.model_selection import KFold
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.utils.validation import check_is_fitted

from app.ml.calibration import CalibratedLinearSVC, Fold
from app.ml.fold_features import (
    FoldFeaturesUnsupported,
    check_fold_features,
    doc_count,
    fold_matrices,
)
from app.ml.scope import ScopeModel, coverage, in_scope

__all__ = ["OpenSetPipeline", "out_of_fold_coverage", "word_coverage", "word_vectorizers"]

# Folds of the out-of-fold coverage: 5, as the default classifier's calibration uses.
SCOPE_FOLDS = 5
SCOPE_SEED = 0


def word_vectorizers(features: Any) -> list[TfidfVectorizer]:
    """The word-analyzer vectorizers of a `features` step, in column order."""
    if isinstance(features, FeatureUnion):
        candidates: Iterable[Any] = (vec for _, vec in features.transformer_list)
    else:
        candidates = (features,)
    return [
        vec
        for vec in candidates
        if isinstance(vec, CountVectorizer) and getattr(vec, "analyzer", None) == "word"
    ]


def word_coverage(vectorizers: Sequence[TfidfVectorizer], texts: Iterable[str]) -> np.ndarray:
    """Share of each text's word n-grams found in the fitted vectorizers' vocabularies."""
    analyzers = [(vec.build_analyzer(), vec.vocabulary_) for vec in vectorizers]
    covered: list[int] = []
    total: list[int] = []
    for text in texts:
        hits = grams = 0
        for analyze, vocabulary in analyzers:
            found = analyze(text)
            grams += len(found)
            hits += sum(1 for gram in found if gram in vocabulary)
        covered.append(hits)
        total.append(grams)
    return coverage(np.asarray(covered), np.asarray(total))


def out_of_fold_coverage(
    vectorizers: Sequence[TfidfVectorizer], texts: Sequence[str]
) -> np.ndarray:
    """Each training text's coverage against the vocabulary the other folds would build.

    One pass counts every n-gram; a fold's vocabulary is then document-frequency
    arithmetic (the terms whose frequency outside the fold meets min_df and
    max_df), exactly what refitting the vectorizer on the other folds would keep,
    at a fifth of the cost.
    """
    n = len(texts)
    covered = np.zeros(n)
    total = np.zeros(n)
    folds = list(KFold(min(SCOPE_FOLDS, n), shuffle=True, random_state=SCOPE_SEED).split(texts))
    for vec in vectorizers:
        counts = CountVectorizer(analyzer=vec.build_analyzer()).fit_transform(texts).tocsr()
        present = counts.copy()
        present.data[:] = 1
        df_all = np.asarray(present.sum(axis=0)).ravel()
        total += np.asarray(counts.sum(axis=1)).ravel()
        for fit_rows, held in folds:
            df_rest = df_all - np.asarray(present[held].sum(axis=0)).ravel()
            kept = (df_rest > 0) & (df_rest >= doc_count(vec.min_df, fit_rows.size))
            kept &= df_rest <= doc_count(vec.max_df, fit_rows.size)
            covered[held] += counts[held] @ kept.astype(np.float64)
    return coverage(covered, total)


class OpenSetPipeline(Pipeline):  # type: ignore[misc]
    """``features -> clf`` whose probabilities fall for names unlike the training data.

    ``scope_alpha`` is the conformal level of `app.ml.scope.ScopeModel`; 0 turns
    the test off (every name in scope, probabilities as the classifier gives them).
    """

    def __init__(
        self,
        steps: list[tuple[str, Any]],
        *,
        scope_alpha: float = 0.0,
        transform_input: list[str] | None = None,
        memory: Any = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(steps, transform_input=transform_input, memory=memory, verbose=verbose)
        self.scope_alpha = scope_alpha

    def fit(self, X: Any, y: Any = None, **params: Any) -> OpenSetPipeline:
        """Fit the features, the classifier (calibrated out of fold) and the scope test."""
        if params:
            raise TypeError(f"unexpected fit parameters: {', '.join(params)}")
        texts = list(X)
        matrix = self.steps[0][1].fit_transform(texts)
        return self.fit_classifier(texts, matrix, y)

    def fit_classifier(self, texts: Sequence[str], matrix: Any, y: Any) -> OpenSetPipeline:
        """Fit the classifier on the fitted features' `matrix`, then the scope test.

        A CalibratedLinearSVC gets its out-of-fold scores from features refitted
        per fold (`app.ml.fold_features`), so its calibration sees held-out names
        as the served model will see new ones.
        """
        clf = self.steps[-1][1]
        if type(clf) is CalibratedLinearSVC:
            clf.fit(matrix, y, folds=self._folds(clf, texts, y))
        else:
            clf.fit(matrix, y)
        return self.fit_scope(texts)

    def _folds(
        self, clf: CalibratedLinearSVC, texts: Sequence[str], y: Any
    ) -> Iterator[Fold] | None:
        """The calibration folds with per-fold features, built one at a time as they are fitted."""
        features = self.steps[0][1]
        try:
            check_fold_features(features)
        except FoldFeaturesUnsupported:
            return None
        _, _, splits = clf.encode(y)
        return fold_matrices(features, texts, splits)

    def fit_scope(self, texts: Sequence[str]) -> OpenSetPipeline:
        """Fit only the scope test, for a pipeline whose steps are already fitted."""
        vectorizers = word_vectorizers(self.steps[0][1])
        if self.scope_alpha and vectorizers:
            reference = out_of_fold_coverage(vectorizers, list(texts))
            self.scope_: ScopeModel | None = ScopeModel.fit(reference, self.scope_alpha)
        else:
            self.scope_ = None
        return self

    def scope_factor(self, texts: Sequence[str]) -> np.ndarray:
        """The factor each text's probabilities are multiplied by (1 without a scope test)."""
        check_is_fitted(self, "scope_")
        if self.scope_ is None:
            return np.ones(len(texts))
        return self.scope_.factor(word_coverage(word_vectorizers(self.steps[0][1]), texts))

    def in_scope(self, texts: Sequence[str]) -> np.ndarray:
        """True for each text the scope test accepts."""
        return in_scope(self.scope_factor(texts))

    def predict_proba(self, X: Any, **params: Any) -> np.ndarray:
        """The classifier's probabilities times each name's scope factor."""
        texts = list(X)
        proba = np.asarray(super().predict_proba(texts, **params), dtype=np.float64)
        scoped: np.ndarray = proba * self.scope_factor(texts)[:, None]
        return scoped
