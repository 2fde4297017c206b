"""Exact, low-latency scorer derived from a fitted pipeline (which stays the source of truth).

``FastScorer.from_pipeline`` reads the fitted TF-IDF vocabularies and idf weights,
folds every linear stage (classifier coefficients and, where the calibration is
affine, the calibration map) into one dense ``(n_features, n_outputs)`` matrix,
and keeps a small "head" that turns those outputs into probabilities with the
same arithmetic as the pipeline. Anything it cannot reproduce exactly raises
``UnsupportedPipelineError`` instead of scoring differently.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import LabelEncoder
from sklearn.svm import LinearSVC

from app.ml.calibration import LOG_T_LIMIT, CalibratedLinearSVC, adaptive_temperature_logits

__all__ = ["FastScorer", "UnsupportedPipelineError"]

# sklearn's own whitespace normalisation for char analyzers (_VectorizerMixin._white_spaces).
_WHITE_SPACES = re.compile(r"\s\s+")


# Words whose char_wb columns are remembered per vectorizer (bounded: about 1 MB).
_WORD_CACHE_SIZE = 4096


def _char_wb_columns(
    word: str, min_n: int, max_n: int, vocab_get: Callable[[str], int | None]
) -> tuple[int, ...]:
    """In-vocabulary columns of one word's char_wb n-grams, repeated per occurrence."""
    w = " " + word + " "
    w_len = len(w)
    columns: list[int] = []
    for n in range(min_n, max_n + 1):
        if n >= w_len:
            # sklearn emits the whole padded word once for n >= its length.
            j = vocab_get(w)
            if j is not None:
                columns.append(j)
            break
        for i in range(w_len - n + 1):
            j = vocab_get(w[i : i + n])
            if j is not None:
                columns.append(j)
    return tuple(columns)


class UnsupportedPipelineError(ValueError):
    """Raised when a pipeline contains a step the fast path cannot reproduce exactly."""


@dataclass(frozen=True)
class _Block:
    """One fitted TfidfVectorizer translated to plain Python/numpy state."""

    analyzer: str
    preprocess: Callable[[str], str]
    tokenize: Callable[[str], list[str]] | None
    min_n: int
    max_n: int
    offset: int  # first global column of this block
    vocabulary: dict[str, int]  # term -> global column
    idf: list[float] | None  # indexed by local column; None when use_idf=False
    sublinear_tf: bool
    binary: bool
    norm: str | None
    weight: float
    # The idf weights again as an array, for the vectorised single-name path.
    idf_array: np.ndarray | None = None
    # Mutable cache inside a frozen record: the mapping object never changes.
    word_columns: dict[str, tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class _SigmoidMember:
    """One CalibratedClassifierCV member: output columns, Platt (a, b) and target classes."""

    columns: np.ndarray
    a: np.ndarray
    b: np.ndarray
    class_idx: np.ndarray


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise UnsupportedPipelineError(message)


def _block_from_vectorizer(vec: Any, offset: int, weight: float, name: str) -> _Block:
    _check(type(vec) is TfidfVectorizer, f"feature step {name!r} must be a TfidfVectorizer")
    _check(hasattr(vec, "vocabulary_"), f"feature step {name!r} is not fitted")
    _check(vec.input == "content", f"{name}: only input='content' is supported")
    _check(vec.analyzer in ("word", "char", "char_wb"), f"{name}: callable analyzer unsupported")
    _check(vec.norm in ("l2", "l1", None), f"{name}: norm={vec.norm!r} unsupported")
    stop_words = vec.get_stop_words() if vec.analyzer == "word" else None
    _check(not stop_words, f"{name}: stop_words are not supported by the fast path")
    min_n, max_n = vec.ngram_range
    vocabulary = {term: offset + int(col) for term, col in vec.vocabulary_.items()}
    # A Python list indexes faster than a numpy array for the handful of active terms.
    idf = [float(v) for v in np.asarray(vec.idf_, dtype=np.float64)] if vec.use_idf else None
    return _Block(
        analyzer=vec.analyzer,
        # build_preprocessor/build_tokenizer return exactly what the vectorizer
        # uses (custom callables, or sklearn's lowercase/strip_accents/regex).
        preprocess=vec.build_preprocessor(),
        tokenize=vec.build_tokenizer() if vec.analyzer == "word" else None,
        offset=offset,
        min_n=int(min_n),
        max_n=int(max_n),
        vocabulary=vocabulary,
        idf=idf,
        idf_array=np.asarray(vec.idf_, dtype=np.float64) if vec.use_idf else None,
        sublinear_tf=bool(vec.sublinear_tf),
        binary=bool(vec.binary),
        norm=vec.norm,
        weight=weight,
    )


def _extract_blocks(features: Any) -> tuple[list[_Block], int]:
    """Translate a TfidfVectorizer or a FeatureUnion of them into blocks and total width."""
    if isinstance(features, TfidfVectorizer):
        return [_block_from_vectorizer(features, 0, 1.0, "features")], len(features.vocabulary_)
    _check(
        isinstance(features, FeatureUnion),
        "the 'features' step must be a FeatureUnion or TfidfVectorizer",
    )
    weights = features.transformer_weights or {}
    blocks: list[_Block] = []
    offset = 0
    for name, vec in features.transformer_list:
        # Dropped transformers contribute no columns.
        if vec == "drop" or vec is None:
            continue
        _check(vec != "passthrough", f"feature step {name!r}: passthrough is unsupported")
        block = _block_from_vectorizer(vec, offset, float(weights.get(name, 1.0)), name)
        blocks.append(block)
        offset += len(vec.vocabulary_)
    _check(bool(blocks), "the FeatureUnion has no active TfidfVectorizer")
    return blocks, offset


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


class FastScorer:
    """Pure-Python/numpy re-implementation of ``pipeline.predict_proba`` for supported shapes."""

    def __init__(
        self,
        blocks: list[_Block],
        weights: np.ndarray,
        bias: np.ndarray,
        head: str,
        classes: np.ndarray,
        members: list[_SigmoidMember] | None = None,
        theta: np.ndarray | None = None,
    ) -> None:
        self._blocks = blocks
        self._weights = np.ascontiguousarray(weights, dtype=np.float64)
        self._bias = np.asarray(bias, dtype=np.float64)
        self._head = head
        self._members = members or []
        # Adaptive-temperature parameters, for the "adaptive_softmax" head only.
        self._theta = None if theta is None else np.asarray(theta, dtype=np.float64)
        self._n_features = self._weights.shape[0]
        self.classes: np.ndarray = np.asarray([str(c) for c in classes], dtype=str)

    # ------------------------------------------------------------------ build
    @classmethod
    def from_pipeline(cls, pipeline: Pipeline) -> FastScorer:
        """Derive a scorer from a fitted ``features -> clf`` Pipeline or raise if unsupported."""
        _check(isinstance(pipeline, Pipeline), "expected a sklearn Pipeline")
        _check(len(pipeline.steps) == 2, "expected exactly two steps: features -> clf")
        features, clf = pipeline.steps[0][1], pipeline.steps[1][1]
        blocks, n_features = _extract_blocks(features)
        _check(hasattr(clf, "classes_"), "the classifier is not fitted")
        classes = np.asarray(clf.classes_)
        n_classes = classes.shape[0]

        if type(clf) is CalibratedLinearSVC:
            coef_t, intercept = _linear_parts(clf.estimator_, n_features)
            cal_coef, cal_b = clf.calibration_coef_, clf.calibration_intercept_
            _check(cal_coef.shape == (coef_t.shape[1], n_classes), "calibration map mis-shaped")
            # Both stages are affine, so fold them: (x W + c) A + b = x (W A) + (c A + b).
            weights, bias = coef_t @ cal_coef, intercept @ cal_coef + cal_b
            theta = getattr(clf, "calibration_theta_", None)
            if theta is not None:
                # The per-row temperature is not linear: it stays in the head.
                return cls(blocks, weights, bias, "adaptive_softmax", classes, theta=theta)
            return cls(blocks, weights, bias, "softmax", classes)

        if type(clf) is LogisticRegression:
            coef_t, intercept = _linear_parts(clf, n_features)
            head = "binary_logistic" if n_classes <= 2 else "softmax"
            return cls(blocks, coef_t, intercept, head, classes)

        if type(clf) is SGDClassifier:
            _check(clf.loss == "log_loss", f"SGDClassifier(loss={clf.loss!r}) is unsupported")
            coef_t, intercept = _linear_parts(clf, n_features)
            head = "binary_logistic" if n_classes <= 2 else "ovr_normalized"
            return cls(blocks, coef_t, intercept, head, classes)

        if type(clf) is CalibratedClassifierCV:
            _check(
                clf.method == "sigmoid",
                f"CalibratedClassifierCV(method={clf.method!r}) is unsupported; use 'sigmoid'",
            )
            encoder = LabelEncoder().fit(classes)
            cols: list[np.ndarray] = []
            biases: list[np.ndarray] = []
            members: list[_SigmoidMember] = []
            start = 0
            for member in clf.calibrated_classifiers_:
                est = member.estimator
                _check(
                    isinstance(est, LinearSVC | LogisticRegression | SGDClassifier),
                    f"unsupported calibrated estimator {type(est).__name__}",
                )
                # The calibrators consume decision_function, which for these
                # estimators is x @ coef.T + intercept.
                _check(
                    not isinstance(est, SGDClassifier) or hasattr(est, "decision_function"),
                    "estimator lacks decision_function",
                )
                coef_t, intercept = _linear_parts(est, n_features)
                width = coef_t.shape[1]
                class_idx = encoder.transform(est.classes_)
                if n_classes == 2:
                    # Binary: the single score belongs to classes_[1].
                    class_idx = class_idx[:1] + 1
                _check(len(member.calibrators) == width, "calibrator count mismatch")
                a = np.array([float(np.asarray(c.a_).ravel()[0]) for c in member.calibrators])
                b = np.array([float(np.asarray(c.b_).ravel()[0]) for c in member.calibrators])
                members.append(_SigmoidMember(np.arange(start, start + width), a, b, class_idx))
                cols.append(coef_t)
                biases.append(intercept)
                start += width
            return cls(
                blocks,
                np.hstack(cols),
                np.concatenate(biases),
                "sigmoid_ensemble",
                classes,
                members,
            )

        raise UnsupportedPipelineError(
            f"the fast path does not support classifier {type(clf).__name__}"
        )

    # --------------------------------------------------------------- features
    def _row(self, name: str) -> tuple[list[int], list[float]]:
        """Active global columns and their final feature values for one name."""
        indices: list[int] = []
        values: list[float] = []
        cache: dict[Callable[[str], str], str] = {}
        for block in self._blocks:
            doc = cache.get(block.preprocess)
            if doc is None:
                doc = block.preprocess(name)
                cache[block.preprocess] = doc
            counts = self._count(block, doc)
            if not counts:
                continue
            cols = list(counts)
            # One pass per step over ~50 active terms; a count of 1 (the usual
            # case) has sublinear tf exactly 1.
            if block.binary:
                tf = [1.0] * len(cols)
            elif block.sublinear_tf:
                tf = [1.0 if c == 1 else math.log(c) + 1.0 for c in counts.values()]
            else:
                tf = [float(c) for c in counts.values()]
            if block.idf is not None:
                idf = block.idf
                off = block.offset
                vals = [t * idf[j - off] for t, j in zip(tf, cols, strict=True)]
            else:
                vals = tf
            if block.norm == "l2":
                norm = math.hypot(*vals)
            elif block.norm == "l1":
                norm = math.fsum(abs(v) for v in vals)
            else:
                norm = 1.0
            scale = block.weight / norm if norm > 0.0 else block.weight
            indices.extend(cols)
            values.extend([v * scale for v in vals])
        return indices, values

    @staticmethod
    def _count(block: _Block, doc: str) -> dict[int, int]:
        """Count in-vocabulary n-grams of a preprocessed document, mirroring sklearn's analyzers."""
        vocab_get = block.vocabulary.get
        counts: dict[int, int] = {}
        min_n, max_n = block.min_n, block.max_n
        if block.analyzer == "word":
            assert block.tokenize is not None
            tokens = block.tokenize(doc)
            n_tok = len(tokens)
            for n in range(min_n, min(max_n, n_tok) + 1):
                for i in range(n_tok - n + 1):
                    gram = tokens[i] if n == 1 else " ".join(tokens[i : i + n])
                    j = vocab_get(gram)
                    if j is not None:
                        counts[j] = counts.get(j, 0) + 1
            return counts
        text = _WHITE_SPACES.sub(" ", doc)
        if block.analyzer == "char":
            text_len = len(text)
            for n in range(min_n, min(max_n, text_len) + 1):
                for i in range(text_len - n + 1):
                    j = vocab_get(text[i : i + n])
                    if j is not None:
                        counts[j] = counts.get(j, 0) + 1
            return counts
        # char_wb n-grams never cross a word boundary, so each word's columns can
        # be computed once and reused: product names repeat brands and units.
        word_columns = block.word_columns
        columns: list[int] = []
        for word in text.split():
            cached = word_columns.get(word)
            if cached is None:
                cached = _char_wb_columns(word, min_n, max_n, vocab_get)
                if len(word_columns) >= _WORD_CACHE_SIZE:
                    word_columns.clear()
                word_columns[word] = cached
            columns.extend(cached)
        return Counter(columns)

    # ------------------------------------------------------------------- head
    def _probabilities(self, z: np.ndarray) -> np.ndarray:
        """Map pre-activation outputs (n, n_outputs) to probabilities (n, n_classes)."""
        head = self._head
        if head == "adaptive_softmax":
            assert self._theta is not None
            z = adaptive_temperature_logits(z, self._theta)
            head = "softmax"
        if head == "softmax":
            # scipy's softmax arithmetic without its per-call overhead (~5 us).
            z = z - z.max(axis=1, keepdims=True)
            np.exp(z, out=z)
            z /= z.sum(axis=1, keepdims=True)
            return z
        if head == "binary_logistic":
            p = expit(z[:, 0])
            return np.column_stack([1.0 - p, p])
        if head == "ovr_normalized":
            prob = expit(z)
            total = prob.sum(axis=1)
            zero = total == 0
            if zero.any():
                prob[zero, :] = 1.0
                total[zero] = prob.shape[1]
            normalised: np.ndarray = prob / total[:, None]
            return normalised
        return self._sigmoid_ensemble(z)

    def _sigmoid_ensemble(self, z: np.ndarray) -> np.ndarray:
        n_classes = self.classes.shape[0]
        mean = np.zeros((z.shape[0], n_classes))
        for m in self._members:
            proba = np.zeros((z.shape[0], n_classes))
            proba[:, m.class_idx] = expit(-(z[:, m.columns] * m.a + m.b))
            if n_classes == 2:
                proba[:, 0] = 1.0 - proba[:, 1]
            else:
                denom = proba.sum(axis=1)[:, None]
                proba = np.divide(
                    proba, denom, out=np.full_like(proba, 1.0 / n_classes), where=denom != 0
                )
            proba[(proba > 1.0) & (proba <= 1.0 + 1e-5)] = 1.0
            mean += proba
        mean /= len(self._members)
        return mean

    # ---------------------------------------------------------------- public
    def predict_proba_one(self, name: str) -> np.ndarray:
        """Class probabilities for one name (1-D, ``classes`` order).

        The same arithmetic as `_row`, but tf, idf and norms are applied to the
        whole row in a few numpy operations: cheaper than per-term Python for
        the ~100 active terms of a product name.
        """
        columns: list[int] = []
        counts: list[int] = []
        ends: list[int] = []
        docs: dict[Callable[[str], str], str] = {}
        for block in self._blocks:
            doc = docs.get(block.preprocess)
            if doc is None:
                doc = docs[block.preprocess] = block.preprocess(name)
            found = self._count(block, doc)
            columns.extend(found)
            counts.extend(found.values())
            ends.append(len(columns))
        if not columns:
            empty: np.ndarray = self._probabilities(self._bias[None, :].copy())[0]
            return empty
        cols = np.array(columns, dtype=np.intp)
        values = np.array(counts, dtype=np.float64)
        start = 0
        for block, end in zip(self._blocks, ends, strict=True):
            if end == start:
                continue
            segment = values[start:end]
            if block.binary:
                segment[:] = 1.0
            elif block.sublinear_tf:
                np.log(segment, out=segment)
                segment += 1.0
            if block.idf_array is not None:
                segment *= block.idf_array[cols[start:end] - block.offset]
            if block.norm == "l2":
                norm = math.sqrt(float(segment @ segment))
            elif block.norm == "l1":
                norm = float(np.abs(segment).sum())
            else:
                norm = 1.0
            segment *= block.weight / norm if norm > 0.0 else block.weight
            start = end
        z = values @ self._weights[cols] + self._bias
        if self._head == "adaptive_softmax" and z.shape[0] > 1:
            return self._adaptive_softmax_one(z)
        proba: np.ndarray = self._probabilities(z[None, :])[0]
        return proba

    def _adaptive_softmax_one(self, z: np.ndarray) -> np.ndarray:
        """`adaptive_temperature_logits` + softmax for one row, in scalars where that is
        cheaper; the same formula and operation order, so equal to well within 1e-9."""
        assert self._theta is not None
        theta = self._theta
        second, top = np.partition(z, z.shape[0] - 2)[-2:]
        log_t = theta[0] + float(top) * theta[1] + float(top - second) * theta[2]
        log_t = min(max(log_t, -LOG_T_LIMIT), LOG_T_LIMIT)
        scaled = z * math.exp(log_t)
        scaled -= scaled.max()
        np.exp(scaled, out=scaled)
        scaled /= scaled.sum()
        return scaled

    def predict_proba_many(self, names: Sequence[str]) -> np.ndarray:
        """Class probabilities for many names (2-D, rows follow ``names``)."""
        n = len(names)
        if n == 0:
            return np.zeros((0, self.classes.shape[0]))
        indptr = [0]
        indices: list[int] = []
        values: list[float] = []
        for name in names:
            idx, vals = self._row(name)
            indices.extend(idx)
            values.extend(vals)
            indptr.append(len(indices))
        x = sp.csr_matrix(
            (np.asarray(values, dtype=np.float64), np.asarray(indices, dtype=np.int64), indptr),
            shape=(n, self._n_features),
        )
        z = np.asarray(x @ self._weights) + self._bias
        return self._probabilities(z)
