"""Probability heads: the non-linear last step from linear outputs to class probabilities.

Each head repeats the arithmetic of one kind of classifier's ``predict_proba``; the
compiler picks one per pipeline, so scoring never dispatches on the model kind.
Heads use numpy alone (serving workers import neither SciPy nor scikit-learn) and
describe themselves as JSON (`spec`), read back by `head_from_spec` from an
allow-list of kinds, so a version's scorer is stored without pickle.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from app.ml.temperature import LOG_T_LIMIT, adaptive_temperature_logits

__all__ = [
    "AdaptiveSoftmax",
    "BinaryLogistic",
    "Head",
    "OneVsRestNormalized",
    "SigmoidEnsemble",
    "SigmoidMember",
    "Softmax",
    "head_from_spec",
]


def expit(x: np.ndarray) -> np.ndarray:
    """The logistic sigmoid, as scipy.special.expit computes it for float64."""
    # exp(-x) overflows to inf for x < -709, and 1 / inf is the correct 0.
    with np.errstate(over="ignore"):
        result: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return result


class Head(ABC):
    """Maps pre-activation outputs to probabilities, columns in ``classes`` order."""

    kind: ClassVar[str]

    def spec(self) -> dict[str, Any]:
        """This head as JSON-able data (`head_from_spec` reads it back)."""
        return {"kind": self.kind}

    @abstractmethod
    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Probabilities (n, n_classes) for outputs (n, n_outputs); may reuse ``z``."""

    def one(self, z: np.ndarray) -> np.ndarray:
        """Probabilities (n_classes,) for one row of outputs (n_outputs,)."""
        proba: np.ndarray = self(z[None, :])[0]
        return proba

    def evidence(self) -> np.ndarray | None:
        """(n_outputs, n_classes) map from outputs to each class's evidence; None = identity.

        Evidence rises with the class's probability; `app.ml.explain` credits it to terms.
        """
        return None


def _softmax_rows(z: np.ndarray) -> np.ndarray:
    # scipy's softmax arithmetic without its per-call overhead (~5 us).
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


class Softmax(Head):
    """Multinomial logistic regression and the affine calibration maps."""

    kind = "softmax"

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Row-wise softmax."""
        return _softmax_rows(z)


@dataclass(frozen=True)
class AdaptiveSoftmax(Head):
    """CalibratedLinearSVC's adaptive map: a per-row temperature, then softmax."""

    theta: np.ndarray
    kind = "adaptive_softmax"

    def spec(self) -> dict[str, Any]:
        """The kind and the three temperature coefficients."""
        return {"kind": self.kind, "theta": self.theta.tolist()}

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

    kind = "binary_logistic"

    def evidence(self) -> np.ndarray:
        """The log-odds split evenly: half against ``classes[0]``, half for ``classes[1]``."""
        return np.array([[-0.5, 0.5]])

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """``[1 - sigmoid(z), sigmoid(z)]`` per row."""
        p = expit(z[:, 0])
        return np.column_stack([1.0 - p, p])


class OneVsRestNormalized(Head):
    """Multi-class SGDClassifier(loss="log_loss"): one-vs-rest sigmoids, normalised."""

    kind = "one_vs_rest_normalized"

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
    kind = "sigmoid_ensemble"

    def spec(self) -> dict[str, Any]:
        """The kind, the class count and each member's columns, Platt (a, b) and classes."""
        return {
            "kind": self.kind,
            "n_classes": self.n_classes,
            "members": [
                {
                    "columns": m.columns.tolist(),
                    "a": m.a.tolist(),
                    "b": m.b.tolist(),
                    "class_idx": m.class_idx.tolist(),
                }
                for m in self.members
            ],
        }

    def evidence(self) -> np.ndarray:
        """Each member's Platt-scaled score of a class, averaged over members."""
        n_outputs = 1 + max(int(m.columns.max()) for m in self.members)
        matrix = np.zeros((n_outputs, self.n_classes))
        for m in self.members:
            # A member's probability is expit(-(a z + b)): it rises with -a z.
            matrix[m.columns, m.class_idx] -= m.a / len(self.members)
        if self.n_classes == 2:
            matrix[:, 0] = -matrix[:, 1]
        return matrix

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


def head_from_spec(spec: dict[str, Any], n_outputs: int, n_classes: int) -> Head:
    """The head `spec` describes, checked against the scorer's shape; ValueError otherwise."""
    kind = spec.get("kind")
    if kind == Softmax.kind and n_outputs == n_classes:
        return Softmax()
    if kind == BinaryLogistic.kind and n_outputs == 1 and n_classes == 2:
        return BinaryLogistic()
    if kind == OneVsRestNormalized.kind and n_outputs == n_classes:
        return OneVsRestNormalized()
    if kind == AdaptiveSoftmax.kind and n_outputs == n_classes:
        theta = np.asarray(spec["theta"], dtype=np.float64)
        if theta.shape != (3,):
            raise ValueError("adaptive_softmax needs three temperature coefficients")
        return AdaptiveSoftmax(theta)
    if kind == SigmoidEnsemble.kind and spec.get("n_classes") == n_classes:
        members = tuple(_member(m, n_outputs, n_classes) for m in spec["members"])
        if not members:
            raise ValueError("sigmoid_ensemble needs at least one member")
        return SigmoidEnsemble(members, n_classes)
    raise ValueError(f"unsupported or mis-shaped head {kind!r}")


def _member(spec: dict[str, Any], n_outputs: int, n_classes: int) -> SigmoidMember:
    columns = np.asarray(spec["columns"], dtype=np.intp)
    class_idx = np.asarray(spec["class_idx"], dtype=np.intp)
    a = np.asarray(spec["a"], dtype=np.float64)
    b = np.asarray(spec["b"], dtype=np.float64)
    width = columns.shape[0]
    if not (
        columns.ndim == 1
        and a.shape == b.shape == class_idx.shape == (width,)
        and np.all((columns >= 0) & (columns < n_outputs))
        and np.all((class_idx >= 0) & (class_idx < n_classes))
    ):
        raise ValueError("a sigmoid_ensemble member is mis-shaped")
    return SigmoidMember(columns, a, b, class_idx)
