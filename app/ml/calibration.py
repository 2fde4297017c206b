"""LinearSVC with a probability map fitted on out-of-fold decision scores.

Four maps are available. "temperature", "vector" and "matrix" are affine maps of
the scores followed by a softmax. "adaptive" (the default) multiplies the scores
by a per-row temperature ``exp(theta . [1, top score, top-2 margin])``: being a
positive scale it never changes the arg-max, so macro-F1 is exactly that of the
LinearSVC, while confident and ambiguous rows get different sharpness. On the
Instacart validation split the affine maps cost 0.002-0.013 macro-F1 by never
predicting the rarest classes; see docs/model.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from app.ml.algorithms import CALIBRATION_METHODS
from app.ml.parallel import run_fits
from app.ml.temperature import LOG_T_LIMIT, adaptive_temperature_logits, temperature_features

__all__ = ["CalibratedLinearSVC", "Fold", "score_matrix"]

# One calibration fold as `fit` takes it: (fit rows, held-out rows, X of the fit
# rows, X of the held-out rows).
Fold = tuple[np.ndarray, np.ndarray, Any, Any]


def score_matrix(decision: np.ndarray) -> np.ndarray:
    """Return decision scores as a 2-D (n_samples, n_scores) float64 array."""
    scores = np.asarray(decision, dtype=np.float64)
    # Binary LinearSVC returns one score per sample (positive = classes_[1]).
    return scores.reshape(-1, 1) if scores.ndim == 1 else scores


def _fit(svc: LinearSVC, X: Any, y: np.ndarray) -> LinearSVC:
    # Module-level functions, so joblib's Dask backend can ship them to a worker.
    return svc.fit(X, y)


def _fit_and_score(svc: LinearSVC, X_fit: Any, y_fit: np.ndarray, X_held: Any) -> np.ndarray:
    return score_matrix(svc.fit(X_fit, y_fit).decision_function(X_held))


def _expand_binary(
    coef: np.ndarray, intercept: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Turn a one-logit binary map into a two-column softmax map (column 0 fixed at 0)."""
    if n_classes != 2 or coef.shape[1] == 2:
        return coef, intercept
    # softmax([0, z]) == [1 - sigmoid(z), sigmoid(z)], i.e. the binary logistic model.
    zeros = np.zeros((coef.shape[0], 1))
    return np.hstack([zeros, coef]), np.concatenate([[0.0], intercept])


def _fit_temperature(
    scores: np.ndarray, y: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fit one inverse temperature by minimising the multinomial log loss."""
    if n_classes == 2:
        # Binary: a single score s maps to logits [0, t * s].
        base = np.hstack([np.zeros_like(scores), scores])
    else:
        base = scores
    rows = np.arange(y.shape[0])

    def nll(log_t: np.ndarray) -> float:
        logp = log_softmax(base * np.exp(log_t[0]), axis=1)
        return float(-logp[rows, y].mean())

    res = minimize(nll, x0=np.zeros(1), method="L-BFGS-B", bounds=[(-10.0, 10.0)])
    t = float(np.exp(res.x[0]))
    coef = np.eye(base.shape[1]) * t
    if n_classes == 2:
        coef = np.array([[0.0, t]])
    return coef, np.zeros(n_classes)


def _fit_vector(
    scores: np.ndarray, y: np.ndarray, n_classes: int, reg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Fit per-class scale and bias (vector scaling) with a small L2 pull towards scale 1."""
    if n_classes == 2:
        # With a single score, vector scaling is exactly Platt scaling.
        lr = LogisticRegression(C=1.0 / reg if reg > 0 else 1e6, max_iter=1000)
        lr.fit(scores, y)
        return _expand_binary(lr.coef_.T.copy(), lr.intercept_.copy(), n_classes)
    n, k = scores.shape
    rows = np.arange(n)
    onehot = np.zeros((n, k))
    onehot[rows, y] = 1.0

    def nll_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = theta[:k], theta[k:]
        z = scores * a + b
        logp = log_softmax(z, axis=1)
        diff = (np.exp(logp) - onehot) / n
        loss = -logp[rows, y].mean() + 0.5 * reg * float(np.sum((a - 1.0) ** 2))
        grad_a = (diff * scores).sum(axis=0) + reg * (a - 1.0)
        grad_b = diff.sum(axis=0)
        return float(loss), np.concatenate([grad_a, grad_b])

    x0 = np.concatenate([np.ones(k), np.zeros(k)])
    res = minimize(nll_grad, x0=x0, jac=True, method="L-BFGS-B", options={"maxiter": 1000})
    a, b = res.x[:k], res.x[k:]
    return np.diag(a), b.copy()


def _fit_adaptive(
    scores: np.ndarray, y: np.ndarray, n_classes: int, reg: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit the adaptive temperature by multinomial log loss; returns (coef, intercept, theta).

    ``coef``/``intercept`` only reshape the SVC scores into one logit per class
    (identity, or [-s/2, s/2] for a binary SVC so the map is symmetric in the classes).
    """
    if n_classes == 2 and scores.shape[1] == 1:
        coef = np.array([[-0.5, 0.5]])
    else:
        coef = np.eye(scores.shape[1])
    intercept = np.zeros(n_classes)
    logits = scores @ coef
    feats = temperature_features(logits)
    n = logits.shape[0]
    rows = np.arange(n)
    # Only the slopes are shrunk: the constant is the plain temperature, which has
    # nothing to be pulled towards.
    penalty = np.array([0.0, 1.0, 1.0]) * reg

    def nll_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        log_t = np.clip(feats @ theta, -LOG_T_LIMIT, LOG_T_LIMIT)
        t = np.exp(log_t)
        logp = log_softmax(logits * t[:, None], axis=1)
        p = np.exp(logp)
        # d(-log p_y)/dt = (E_p[z] - z_y), and dt/dtheta = t * features.
        dt = (p * logits).sum(axis=1) - logits[rows, y]
        loss = -logp[rows, y].mean() + 0.5 * float(np.sum(penalty * theta**2))
        grad = (feats * (dt * t)[:, None]).mean(axis=0) + penalty * theta
        return float(loss), grad

    res = minimize(nll_grad, x0=np.zeros(3), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return coef, intercept, np.asarray(res.x, dtype=np.float64)


def _fit_matrix(
    scores: np.ndarray, y: np.ndarray, n_classes: int, reg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Fit a full affine map of the scores (multinomial logistic stacker)."""
    lr = LogisticRegression(C=1.0 / reg if reg > 0 else 1e6, max_iter=2000)
    lr.fit(scores, y)
    return _expand_binary(lr.coef_.T.copy(), lr.intercept_.copy(), n_classes)


class CalibratedLinearSVC(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """LinearSVC whose scores are mapped to probabilities by a map fitted out-of-fold.

    ``fit`` scores each row by an SVC fitted on the other ``cv`` - 1 folds,
    fits the calibration map on them (``calibration``: one temperature, per-class
    scale+bias, a full affine "matrix" stacker, or the arg-max preserving
    "adaptive" temperature), then refits the LinearSVC on all rows. With
    ``z = decision_function_svc(X) @ A + b`` (``A = calibration_coef_``,
    ``b = calibration_intercept_``) probabilities are ``softmax(z)``, or for
    "adaptive" ``softmax(adaptive_temperature_logits(z, calibration_theta_))``.

    Past ``max_calibration_rows`` rows, the map is fitted on that many of them,
    drawn at random (the fold SVCs still fit on every row of their folds): the
    out-of-fold scores are a dense rows x categories matrix, 8 GB for a million
    names in 1,000 categories, while the default map has three parameters.
    """

    def __init__(
        self,
        C: float = 1.0,
        class_weight: dict[Any, float] | str | None = None,
        max_iter: int = 2000,
        tol: float = 1e-4,
        calibration: str = "adaptive",
        calibration_reg: float = 1e-3,
        cv: int = 5,
        random_state: int | None = 0,
        max_calibration_rows: int | None = 200_000,
    ) -> None:
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.tol = tol
        self.calibration = calibration
        self.calibration_reg = calibration_reg
        self.cv = cv
        self.random_state = random_state
        self.max_calibration_rows = max_calibration_rows

    def _make_svc(self) -> LinearSVC:
        return LinearSVC(
            C=self.C,
            class_weight=self.class_weight,
            max_iter=self.max_iter,
            tol=self.tol,
            random_state=self.random_state,
        )

    def encode(self, y: Any) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """Classes, encoded labels and the stratified folds `fit` scores out of fold."""
        if self.calibration not in CALIBRATION_METHODS:
            raise ValueError(
                f"calibration must be one of {CALIBRATION_METHODS}, got {self.calibration!r}"
            )
        y_arr = np.asarray(y)
        check_classification_targets(y_arr)
        classes, y_enc = np.unique(y_arr, return_inverse=True)
        if classes.shape[0] < 2:
            raise ValueError("CalibratedLinearSVC needs at least 2 classes")
        min_count = int(np.bincount(y_enc).min())
        n_splits = min(self.cv, min_count)
        if n_splits < 2:
            raise ValueError(
                "every class needs at least 2 training rows for out-of-fold calibration"
            )
        folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=self.random_state)
        return classes, y_enc, list(folds.split(np.zeros(y_enc.shape[0]), y_enc))

    def fit(self, X: Any, y: Any, folds: Iterable[Fold] | None = None) -> CalibratedLinearSVC:
        """Fit the calibration map on out-of-fold scores, then the SVC on all rows.

        The fold fits and the final fit are independent, so they run together
        (`app.ml.parallel.run_fits`), the final one first as the longest. `folds`
        are `encode`'s folds with their own feature matrices, built by the caller
        (`OpenSetPipeline` refits the features per fold, which X alone cannot);
        without them the folds share X's features.
        """
        classes, y_enc, splits = self.encode(y)
        if folds is None:
            folds = ((fit_rows, held, X[fit_rows], X[held]) for fit_rows, held in splits)
        sample = self._calibration_sample(y_enc.shape[0])
        held_rows: list[np.ndarray] = []

        def tasks() -> Iterator[tuple[Callable[..., Any], tuple[Any, ...]]]:
            yield _fit, (self._make_svc(), X, y_enc)
            for fit_rows, held, x_fit, x_held in folds:
                if sample is not None:
                    chosen = np.isin(held, sample)
                    held, x_held = held[chosen], x_held[chosen]
                held_rows.append(held)
                yield _fit_and_score, (self._make_svc(), x_fit, y_enc[fit_rows], x_held)

        svc, *fold_scores = run_fits(tasks())
        rows = np.arange(y_enc.shape[0]) if sample is None else sample
        oof = np.zeros((rows.shape[0], 1 if classes.shape[0] == 2 else classes.shape[0]))
        for held, scores in zip(held_rows, fold_scores, strict=True):
            oof[np.searchsorted(rows, held)] = scores
        y_cal = y_enc[rows]
        n_classes = classes.shape[0]
        theta: np.ndarray | None = None
        if self.calibration == "adaptive":
            coef, intercept, theta = _fit_adaptive(oof, y_cal, n_classes, self.calibration_reg)
        elif self.calibration == "temperature":
            coef, intercept = _fit_temperature(oof, y_cal, n_classes)
        elif self.calibration == "vector":
            coef, intercept = _fit_vector(oof, y_cal, n_classes, self.calibration_reg)
        else:
            coef, intercept = _fit_matrix(oof, y_cal, n_classes, self.calibration_reg)
        self.estimator_ = svc
        self.classes_ = classes
        self.calibration_rows_ = int(rows.shape[0])
        self.calibration_coef_ = np.asarray(coef, dtype=np.float64)
        self.calibration_intercept_ = np.asarray(intercept, dtype=np.float64)
        # None for the affine maps: the fast path folds those entirely.
        self.calibration_theta_ = theta
        self.n_features_in_ = self.estimator_.n_features_in_
        return self

    def _calibration_sample(self, n_rows: int) -> np.ndarray | None:
        """Sorted rows the map is fitted on when there are too many, else None (all)."""
        limit = self.max_calibration_rows
        if limit is None or n_rows <= limit:
            return None
        chosen = np.random.default_rng(self.random_state).choice(n_rows, limit, replace=False)
        return np.sort(chosen)

    def decision_function(self, X: Any) -> np.ndarray:
        """Calibrated logits (one column per class in ``classes_`` order)."""
        check_is_fitted(self)
        scores = score_matrix(self.estimator_.decision_function(X))
        logits = scores @ self.calibration_coef_ + self.calibration_intercept_
        # getattr: artifacts pickled before the adaptive map existed lack the attribute.
        theta = getattr(self, "calibration_theta_", None)
        if theta is not None:
            logits = adaptive_temperature_logits(logits, theta)
        return logits

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated class probabilities; columns follow ``classes_``."""
        proba: np.ndarray = softmax(self.decision_function(X), axis=1)
        return proba

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class label."""
        labels: np.ndarray = self.classes_[np.argmax(self.decision_function(X), axis=1)]
        return labels
