"""Probability heads: the non-linear last step from linear outputs to class probabilities.

Each head repeats the arithmetic of one kind of classifier's ``predict_proba``; the
compiler picks one per pipeline, so scoring never dispatches on the model kind.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from app.ml.calibration import LOG_T_LIMIT, adaptive_temperature_logits

__all__ = [
    "AdaptiveSoftmax",
    "BinaryLogistic",
    "Head",
    "OneVsRestNormalized",
    "SigmoidEnsemble",
    "SigmoidMember",
    "Softmax",
]


class Head(ABC):
    """Maps pre-activation outputs to probabilities, columns in ``classes`` order."""

    @abstractmethod
    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Probabilities (n, n_classes) for outputs (n, n_outputs); may reuse ``z``."""

    def one(self, z: np.ndarray) -> np.ndarray:
        """Probabilities (n_classes,) for one row of outputs (n_outputs,)."""
        proba: np.ndarray = self(z[None, :])[0]
        return proba


def _softmax_rows(z: np.ndarray) -> np.ndarray:
    # scipy's softmax arithmetic without its per-call overhead (~5 us).
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


class Softmax(Head):
    """Multinomial logistic regression and the affine calibration maps."""

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Row-wise softmax."""
        return _softmax_rows(z)


@dataclass(frozen=True)
class AdaptiveSoftmax(Head):
    """CalibratedLinearSVC's adaptive map: a per-row temperature, then softmax."""

    theta: np.ndarray

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Softmax of `adaptive_temperature_logits`, exactly as the estimator computes it."""
        return _softmax_rows(adaptive_temperature_logits(z, self.theta))

    def one(self, z: np.ndarray) -> np.ndarray:
        """The same formula in operation order, with scalars where that is cheaper per row."""
        theta = self.theta
        second, top = np.partition(z, z.shape[0] - 2)[-2:]
        log_t = theta[0] + float(top) * theta[1] + float(top - second) * theta[2]
        log_t = min(max(log_t, -LOG_T_LIMIT), LOG_T_LIMIT)
        scaled = z * math.exp(log_t)
        scaled -= scaled.max()
        np.exp(scaled, out=scaled)
        scaled /= scaled.sum()
        return scaled


class BinaryLogistic(Head):
    """Two-class logistic models: one output, the log-odds of ``classes[1]``."""

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """``[1 - sigmoid(z), sigmoid(z)]`` per row."""
        p = expit(z[:, 0])
        return np.column_stack([1.0 - p, p])


class OneVsRestNormalized(Head):
    """Multi-class SGDClassifier(loss="log_loss"): one-vs-rest sigmoids, normalised."""

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Sigmoids divided by their row sum (uniform where every sigmoid underflows)."""
        prob = expit(z)
        total = prob.sum(axis=1)
        zero = total == 0
        if zero.any():
            prob[zero, :] = 1.0
            total[zero] = prob.shape[1]
        normalised: np.ndarray = prob / total[:, None]
        return normalised


@dataclass(frozen=True)
class SigmoidMember:
    """One CalibratedClassifierCV member: its output columns, Platt (a, b) and target classes."""

    columns: np.ndarray
    a: np.ndarray
    b: np.ndarray
    class_idx: np.ndarray


@dataclass(frozen=True)
class SigmoidEnsemble(Head):
    """CalibratedClassifierCV(method="sigmoid"): the mean of each member's Platt-scaled proba."""

    members: tuple[SigmoidMember, ...]
    n_classes: int

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Mean over members of their normalised sigmoid probabilities."""
        n_classes = self.n_classes
        mean = np.zeros((z.shape[0], n_classes))
        for m in self.members:
            proba = np.zeros((z.shape[0], n_classes))
            proba[:, m.class_idx] = expit(-(z[:, m.columns] * m.a + m.b))
            if n_classes == 2:
                proba[:, 0] = 1.0 - proba[:, 1]
            else:
                denom = proba.sum(axis=1)[:, None]
                proba = np.divide(
                    proba, denom, out=np.full_like(proba, 1.0 / n_classes), where=denom != 0
                )
            # sklearn clips values that rounding pushed just above 1.
            proba[(proba > 1.0) & (proba <= 1.0 + 1e-5)] = 1.0
            mean += proba
        mean /= len(self.members)
        return mean
