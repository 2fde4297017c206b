"""Hold-out splitting and JSON-serialisable evaluation metrics, including calibration error."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)
from sklearn.model_selection import train_test_split

__all__ = [
    "ECE_BINS",
    "REVIEW_TARGET_PRECISION",
    "coverage_precision_curve",
    "ece_from_bins",
    "evaluate",
    "expected_calibration_error",
    "reliability_bins",
    "review_threshold",
    "split_holdout",
]

# A version's default review threshold is the lowest score at which the names
# scored at least that high are right this often on its hold-out.
REVIEW_TARGET_PRECISION = 0.95
# Thresholds of the coverage-precision curve: 0.00, 0.01, ..., 0.99.
_CURVE_STEPS = 100
# Equal-width confidence bins of the recorded ECE and reliability diagram; the
# value every version so far was scored with, so their ECEs stay comparable.
ECE_BINS = 15
# Rows of a hold-out scored at once by `evaluate`: bounds its dense probabilities.
EVALUATION_CHUNK_ROWS = 8192


def coverage_precision_curve(
    scores: np.ndarray, correct: np.ndarray
) -> list[dict[str, float | int]]:
    """For each threshold: the share of names scored at least that high, and their accuracy.

    `precision` is None-free: a threshold no name reaches has coverage 0 and
    precision 1 (nothing answered, nothing wrong), so the curve stays monotone to read.
    """
    scores = np.asarray(scores, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    right_so_far = np.cumsum(correct[order])
    curve: list[dict[str, float | int]] = []
    n = scores.shape[0]
    for step in range(_CURVE_STEPS):
        threshold = step / _CURVE_STEPS
        # Names with score >= threshold are a prefix of the descending order.
        kept = int(np.searchsorted(-sorted_scores, -threshold, side="right"))
        right = int(right_so_far[kept - 1]) if kept else 0
        curve.append(
            {
                "threshold": threshold,
                "coverage": kept / n if n else 0.0,
                "precision": right / kept if kept else 1.0,
                "names": kept,
            }
        )
    return curve


def review_threshold(
    curve: list[dict[str, float | int]], target: float = REVIEW_TARGET_PRECISION
) -> float:
    """The lowest threshold whose names are right at least `target` of the time (1.0 if none)."""
    for point in curve:
        if point["names"] and point["precision"] >= target:
            return float(point["threshold"])
    return 1.0


def reliability_bins(
    y_true: Sequence[Any] | np.ndarray,
    proba: np.ndarray,
    classes: Sequence[Any] | np.ndarray,
    n_bins: int = ECE_BINS,
) -> list[dict[str, float | int | None]]:
    """Per equal-width top-class confidence bin (lo, hi]: its count, mean confidence, accuracy.

    Every bin is listed, in order; an empty one has count 0 and None for the means.
    """
    proba = np.asarray(proba, dtype=np.float64)
    classes_arr = np.asarray(classes)
    y = np.asarray(y_true)
    if proba.ndim != 2 or proba.shape[0] != y.shape[0] or proba.shape[1] != classes_arr.shape[0]:
        raise ValueError(
            f"proba must have shape (n_samples, n_classes) = ({y.shape[0]}, "
            f"{classes_arr.shape[0]}), got {proba.shape}"
        )
    if y.shape[0] == 0:
        return _bins(np.zeros(0), np.zeros(0), n_bins)
    top = proba.argmax(axis=1)
    confidence = proba[np.arange(proba.shape[0]), top]
    return _bins(confidence, (classes_arr[top] == y).astype(np.float64), n_bins)


def _bins(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int = ECE_BINS
) -> list[dict[str, float | int | None]]:
    """`reliability_bins` from each row's top probability and whether its top class is right."""
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bins are (lo, hi]; a confidence of exactly 0 joins the first bin.
    bin_idx = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    bins: list[dict[str, float | int | None]] = []
    for b in range(n_bins):
        mask = bin_idx == b
        count = int(mask.sum())
        bins.append(
            {
                "lo": float(edges[b]),
                "hi": float(edges[b + 1]),
                "count": count,
                "confidence": float(confidence[mask].mean()) if count else None,
                "accuracy": float(correct[mask].mean()) if count else None,
            }
        )
    return bins


def ece_from_bins(bins: Sequence[dict[str, Any]]) -> float:
    """Expected calibration error of `reliability_bins` output: the count-weighted mean gap."""
    n = float(sum(int(b["count"]) for b in bins))
    ece = 0.0
    for b in bins:
        if b["count"]:
            ece += b["count"] / n * abs(b["accuracy"] - b["confidence"])
    return float(ece)


def expected_calibration_error(
    y_true: Sequence[Any] | np.ndarray,
    proba: np.ndarray,
    classes: Sequence[Any] | np.ndarray,
    n_bins: int = ECE_BINS,
) -> float:
    """Top-class expected calibration error with ``n_bins`` equal-width confidence bins."""
    return ece_from_bins(reliability_bins(y_true, proba, classes, n_bins))


def split_holdout(
    texts: Sequence[str],
    labels: Sequence[str],
    test_size: float = 0.2,
    seed: int = 42,
) -> tuple[list[str], list[str], list[str], list[str]]:
    """Stratified, seeded train/test split returning (train_texts, test_texts, train_y, test_y)."""
    texts_l = list(texts)
    labels_l = list(labels)
    if len(texts_l) != len(labels_l):
        raise ValueError(f"texts and labels differ in length: {len(texts_l)} != {len(labels_l)}")
    counts = Counter(labels_l)
    if len(counts) < 2:
        raise ValueError(
            f"need at least 2 distinct labels for a stratified split, got {len(counts)}"
        )
    too_few = sorted(str(label) for label, c in counts.items() if c < 2)
    if too_few:
        raise ValueError(
            "each label needs at least 2 rows for a stratified split; too few rows for: "
            + ", ".join(too_few)
        )
    n_test = int(np.ceil(test_size * len(texts_l))) if 0 < test_size < 1 else int(test_size)
    n_train = len(texts_l) - n_test
    if n_test < len(counts) or n_train < len(counts):
        raise ValueError(
            f"{len(texts_l)} rows are too few to put each of the {len(counts)} labels in both "
            f"the train and the test part (test_size={test_size})"
        )
    x_tr, x_te, y_tr, y_te = train_test_split(
        texts_l, labels_l, test_size=test_size, random_state=seed, stratify=labels_l
    )
    return list(x_tr), list(x_te), list(y_tr), list(y_te)


def evaluate(pipeline: Any, texts: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Score a fitted classifier pipeline on labelled texts; every value is JSON-serialisable."""
    texts_l = list(texts)
    y_true = np.asarray([str(label) for label in labels], dtype=object)
    if len(texts_l) != y_true.shape[0]:
        raise ValueError("texts and labels differ in length")
    if not texts_l:
        raise ValueError("cannot evaluate on an empty set")
    top, confidence = top_classes(pipeline, texts_l)
    classes = np.asarray([str(c) for c in pipeline.classes_], dtype=object)
    # Predict from the probabilities so the metrics describe what the service returns.
    y_pred = classes[top]
    # Include labels seen only in the evaluation set so the report does not hide them.
    labels_all = sorted(set(classes.tolist()) | set(y_true.tolist()))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels_all, zero_division=0
    )
    per_class = {
        label: {
            "precision": float(p),
            "recall": float(r),
            "f1": float(f),
            "support": int(s),
        }
        for label, p, r, f, s in zip(labels_all, precision, recall, f1, support, strict=True)
    }
    present = sorted(set(y_true.tolist()))
    matrix = confusion_matrix(y_true, y_pred, labels=labels_all)
    # One set of bins gives both the ECE and the reliability diagram, so they agree.
    correct = y_pred == y_true
    bins = _bins(confidence, correct.astype(np.float64))
    return {
        "n_samples": len(texts_l),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        # Macro over labels present in the evaluation set: a class the model never
        # saw and that is absent from the test rows should not count as F1 = 0.
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
        ),
        "weighted_f1": float(
            f1_score(y_true, y_pred, labels=present, average="weighted", zero_division=0)
        ),
        "ece": ece_from_bins(bins),
        "reliability": bins,
        "review": _review(confidence, correct),
        "per_class": per_class,
        "confusion_matrix": {
            "labels": labels_all,
            "matrix": [[int(v) for v in row] for row in matrix],
        },
    }


def top_classes(
    pipeline: Any, texts: Sequence[str], chunk: int = EVALUATION_CHUNK_ROWS
) -> tuple[np.ndarray, np.ndarray]:
    """Each text's most probable class (its column) and that probability.

    In chunks: the probabilities are a dense rows x categories matrix (1.6 GB for
    a 200,000-row hold-out in 1,000 categories), and every row's answer is its
    own, so the result is the same as in one piece.
    """
    tops: list[np.ndarray] = []
    confidences: list[np.ndarray] = []
    for start in range(0, len(texts), chunk):
        proba = np.asarray(pipeline.predict_proba(texts[start : start + chunk]), dtype=np.float64)
        top = proba.argmax(axis=1)
        tops.append(top)
        confidences.append(proba[np.arange(proba.shape[0]), top])
    return np.concatenate(tops), np.concatenate(confidences)


def _review(confidence: np.ndarray, correct: np.ndarray) -> dict[str, Any]:
    curve = coverage_precision_curve(confidence, correct)
    threshold = review_threshold(curve)
    return {
        "threshold": threshold,
        "target_precision": REVIEW_TARGET_PRECISION,
        "coverage_precision": curve,
    }
