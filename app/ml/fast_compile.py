"""Compile a fitted ``features -> clf`` Pipeline into the fast scorer's parts, or refuse it.

Every linear stage (classifier coefficients and, where the calibration is affine,
the calibration map) is folded into one dense ``(n_features, n_outputs)`` matrix;
only the non-linear rest is left to a head. A pipeline that cannot be reproduced
exactly raises `UnsupportedPipelineError`, so the caller keeps scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import LabelEncoder
from sklearn.svm import LinearSVC

from app.ml.calibration import CalibratedLinearSVC
from app.ml.fast_features import (
    Block,
    CharNgrams,
    CharWbNgrams,
    Featurizer,
    NgramCounter,
    WordNgrams,
)
from app.ml.fast_heads import (
    AdaptiveSoftmax,
    BinaryLogistic,
    Head,
    OneVsRestNormalized,
    SigmoidEnsemble,
    SigmoidMember,
    Softmax,
)
from app.ml.fast_path import ScorerParts, UnsupportedPipelineError
from app.ml.open_set import OpenSetPipeline
from app.ml.preprocessing import split_tokens, tokenize
from app.ml.scope import ScopeModel

__all__ = ["compile_pipeline"]

# Weights (n_features, n_outputs), bias (n_outputs,) and the head reading them.
_ClassifierParts = tuple[np.ndarray, np.ndarray, Head]


def compile_pipeline(pipeline: Pipeline) -> ScorerParts:
    """Read a fitted ``features -> clf`` Pipeline into scorer parts or raise if unsupported."""
    _check(isinstance(pipeline, Pipeline), "expected a sklearn Pipeline")
    _check(len(pipeline.steps) == 2, "expected exactly two steps: features -> clf")
    features, clf = pipeline.steps[0][1], pipeline.steps[1][1]
    blocks, n_features = _blocks(features)
    _check(hasattr(clf, "classes_"), "the classifier is not fitted")
    classes = np.asarray(clf.classes_)
    # Exact types: a subclass may override predict_proba with other arithmetic.
    compile_classifier = _CLASSIFIERS.get(type(clf))
    if compile_classifier is None:
        raise UnsupportedPipelineError(
            f"the fast path does not support classifier {type(clf).__name__}"
        )
    weights, bias, head = compile_classifier(clf, classes.shape[0], n_features)
    return ScorerParts(
        features=Featurizer(blocks),
        weights=np.ascontiguousarray(weights, dtype=np.float64),
        bias=np.asarray(bias, dtype=np.float64),
        head=head,
        classes=np.asarray([str(c) for c in classes], dtype=str),
        scope=_scope(pipeline),
    )


def _scope(pipeline: Pipeline) -> ScopeModel | None:
    """The pipeline's scope test, or None; refused unless `OpenSetPipeline` computes it."""
    if type(pipeline) is Pipeline:
        return None
    _check(type(pipeline) is OpenSetPipeline, f"unsupported pipeline {type(pipeline).__name__}")
    _check(hasattr(pipeline, "scope_"), "the scope test is not fitted")
    scope: ScopeModel | None = pipeline.scope_
    return scope


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise UnsupportedPipelineError(message)


def _blocks(features: Any) -> tuple[list[Block], int]:
    """Blocks of a TfidfVectorizer or a FeatureUnion of them, and the total width."""
    if isinstance(features, TfidfVectorizer):
        return [_block(features, 0, 1.0, "features")], len(features.vocabulary_)
    _check(
        isinstance(features, FeatureUnion),
        "the 'features' step must be a FeatureUnion or TfidfVectorizer",
    )
    weights = features.transformer_weights or {}
    blocks: list[Block] = []
    offset = 0
    for name, vec in features.transformer_list:
        # Dropped transformers contribute no columns.
        if vec == "drop" or vec is None:
            continue
        _check(vec != "passthrough", f"feature step {name!r}: passthrough is unsupported")
        blocks.append(_block(vec, offset, float(weights.get(name, 1.0)), name))
        offset += len(vec.vocabulary_)
    _check(bool(blocks), "the FeatureUnion has no active TfidfVectorizer")
    return blocks, offset


def _block(vec: Any, offset: int, weight: float, name: str) -> Block:
    """One fitted TfidfVectorizer whose columns start at global column ``offset``."""
    _check(type(vec) is TfidfVectorizer, f"feature step {name!r} must be a TfidfVectorizer")
    _check(hasattr(vec, "vocabulary_"), f"feature step {name!r} is not fitted")
    _check(vec.input == "content", f"{name}: only input='content' is supported")
    _check(vec.analyzer in ("word", "char", "char_wb"), f"{name}: callable analyzer unsupported")
    _check(vec.norm in ("l2", "l1", None), f"{name}: norm={vec.norm!r} unsupported")
    stop_words = vec.get_stop_words() if vec.analyzer == "word" else None
    _check(not stop_words, f"{name}: stop_words are not supported by the fast path")
    min_n, max_n = int(vec.ngram_range[0]), int(vec.ngram_range[1])
    vocabulary = {term: offset + int(col) for term, col in vec.vocabulary_.items()}
    count: NgramCounter
    if vec.analyzer == "word":
        # build_tokenizer/build_preprocessor return exactly what the vectorizer uses
        # (custom callables, or sklearn's token_pattern, lowercase and strip_accents).
        tokenizer = vec.build_tokenizer()
        if tokenizer is tokenize:
            # The same tokens without NLTK's per-call wrapping, which cost more
            # than all the rest of a name's word n-grams (a test compares the
            # two on every code point).
            tokenizer = split_tokens
        count = WordNgrams(tokenizer, vocabulary, min_n, max_n)
    elif vec.analyzer == "char":
        count = CharNgrams(vocabulary, min_n, max_n)
    else:
        count = CharWbNgrams(vocabulary, min_n, max_n)
    return Block(
        preprocess=vec.build_preprocessor(),
        count=count,
        offset=offset,
        idf=np.array(vec.idf_, dtype=np.float64) if vec.use_idf else None,
        sublinear_tf=bool(vec.sublinear_tf),
        binary=bool(vec.binary),
        norm=vec.norm,
        weight=weight,
    )


def _linear_parts(est: Any, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (coef.T, intercept) of a fitted linear estimator as dense float64."""
    _check(
        isinstance(est, LinearSVC | LogisticRegression | SGDClassifier),
        f"unsupported linear estimator {type(est).__name__}",
    )
    coef = est.coef_
    coef = coef.toarray() if sp.issparse(coef) else np.asarray(coef)
    _check(coef.shape[1] == n_features, "classifier width does not match the features")
    intercept = np.broadcast_to(np.asarray(est.intercept_, dtype=np.float64), (coef.shape[0],))
    return np.ascontiguousarray(coef.T, dtype=np.float64), np.array(intercept, dtype=np.float64)


def _calibrated_linear_svc(clf: Any, n_classes: int, n_features: int) -> _ClassifierParts:
    coef_t, intercept = _linear_parts(clf.estimator_, n_features)
    cal_coef, cal_b = clf.calibration_coef_, clf.calibration_intercept_
    _check(cal_coef.shape == (coef_t.shape[1], n_classes), "calibration map mis-shaped")
    # Both stages are affine, so fold them: (x W + c) A + b = x (W A) + (c A + b).
    weights, bias = coef_t @ cal_coef, intercept @ cal_coef + cal_b
    # getattr: artifacts pickled before the adaptive map existed lack the attribute.
    theta = getattr(clf, "calibration_theta_", None)
    if theta is None:
        return weights, bias, Softmax()
    # The per-row temperature is not linear: it stays in the head.
    return weights, bias, AdaptiveSoftmax(np.asarray(theta, dtype=np.float64))


def _logistic_regression(clf: Any, n_classes: int, n_features: int) -> _ClassifierParts:
    coef_t, intercept = _linear_parts(clf, n_features)
    return coef_t, intercept, BinaryLogistic() if n_classes <= 2 else Softmax()


def _sgd_classifier(clf: Any, n_classes: int, n_features: int) -> _ClassifierParts:
    _check(clf.loss == "log_loss", f"SGDClassifier(loss={clf.loss!r}) is unsupported")
    coef_t, intercept = _linear_parts(clf, n_features)
    return coef_t, intercept, BinaryLogistic() if n_classes <= 2 else OneVsRestNormalized()


def _sigmoid_calibrated_cv(clf: Any, n_classes: int, n_features: int) -> _ClassifierParts:
    _check(
        clf.method == "sigmoid",
        f"CalibratedClassifierCV(method={clf.method!r}) is unsupported; use 'sigmoid'",
    )
    encoder = LabelEncoder().fit(clf.classes_)
    coefs: list[np.ndarray] = []
    intercepts: list[np.ndarray] = []
    members: list[SigmoidMember] = []
    start = 0
    for member in clf.calibrated_classifiers_:
        # The calibrators consume decision_function, which for the linear
        # estimators `_linear_parts` accepts is x @ coef.T + intercept.
        coef_t, intercept = _linear_parts(member.estimator, n_features)
        width = coef_t.shape[1]
        _check(len(member.calibrators) == width, "calibrator count mismatch")
        class_idx = encoder.transform(member.estimator.classes_)
        if n_classes == 2:
            # Binary: the single score belongs to classes_[1].
            class_idx = class_idx[:1] + 1
        a = np.array([float(np.asarray(c.a_).ravel()[0]) for c in member.calibrators])
        b = np.array([float(np.asarray(c.b_).ravel()[0]) for c in member.calibrators])
        members.append(SigmoidMember(np.arange(start, start + width), a, b, class_idx))
        coefs.append(coef_t)
        intercepts.append(intercept)
        start += width
    head = SigmoidEnsemble(tuple(members), n_classes)
    return np.hstack(coefs), np.concatenate(intercepts), head


_CLASSIFIERS: dict[type, Callable[[Any, int, int], _ClassifierParts]] = {
    CalibratedLinearSVC: _calibrated_linear_svc,
    LogisticRegression: _logistic_regression,
    SGDClassifier: _sgd_classifier,
    CalibratedClassifierCV: _sigmoid_calibrated_cv,
}
