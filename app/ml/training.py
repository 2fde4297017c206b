"""Fitting a model from a dataset: split, vectorise, fit, evaluate, verify the fast path."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, ParameterGrid, StratifiedKFold
from sklearn.pipeline import Pipeline

from app.ml.algorithms import ALGORITHMS, DEFAULT_ALGORITHM, DEFAULT_TEST_SIZE
from app.ml.calibration import CalibratedLinearSVC
from app.ml.dataset import Dataset
from app.ml.evaluation import evaluate, split_holdout
from app.ml.fast_path_check import check_fast_path
from app.ml.open_set import OpenSetPipeline
from app.ml.parallel import FitListener, counting_fits
from app.ml.pipeline import build_pipeline

logger = logging.getLogger(__name__)

# Stage names as a progress display and a job's status show them, with the share
# of a typical run's wall time each takes (measured on the shipped data) so the
# overall percentage moves roughly evenly.
STAGES: dict[str, float] = {
    "load": 0.02,
    "vectorise": 0.06,
    "fit + calibrate": 0.35,
    "evaluate": 0.04,
    "refit": 0.45,
    "verify": 0.02,
    "save": 0.06,
}
# With a parameter grid, cross-validated search replaces vectorise + fit.
SEARCH_STAGES: dict[str, float] = {
    "load": 0.01,
    "search": 0.80,
    "evaluate": 0.03,
    "refit": 0.12,
    "verify": 0.01,
    "save": 0.03,
}
SEARCH_FOLDS = 3
SPLIT_SEED = 42

Progress = Callable[[str], None]


def _no_progress(_stage: str) -> None:
    return None


def _no_fit_progress(_progress: object) -> None:
    return None


def _fits_per_pipeline(pipeline: Pipeline, labels: Sequence[str], share: float = 1.0) -> int:
    """Independent fits one `pipeline.fit` on `labels` (or a `share` of them) reports.

    Only the default classifier counts its fits (its folds and the final fit); the
    others fit in one piece or inside scikit-learn, and report none.
    """
    clf = pipeline.named_steps["clf"]
    if type(clf) is not CalibratedLinearSVC or not labels:
        return 0
    smallest = min(Counter(labels).values())
    return min(clf.cv, max(2, int(smallest * share))) + 1


def planned_fits(
    pipeline: Pipeline,
    train_labels: Sequence[str],
    all_labels: Sequence[str],
    *,
    candidates: int = 0,
    refit: bool = True,
) -> int:
    """How many fits `fit_model` will report: the progress total of a job."""
    total = _fits_per_pipeline(pipeline, train_labels)
    if candidates:
        # Each candidate is fitted on every search fold's training part, then the
        # best one on the whole training part.
        share = (SEARCH_FOLDS - 1) / SEARCH_FOLDS
        total += candidates * SEARCH_FOLDS * _fits_per_pipeline(pipeline, train_labels, share)
    if refit:
        total += _fits_per_pipeline(pipeline, all_labels)
    return total


def stage_percent(stage: str, plan: dict[str, float] = STAGES) -> float:
    """Overall percent done when `stage` starts."""
    done = 0.0
    for name, share in plan.items():
        if name == stage:
            return round(100 * done, 1)
        done += share
    return 100.0


class TrainingError(ValueError):
    """Training cannot proceed; the message says why in one line."""


@dataclass
class TrainedModel:
    """A fitted pipeline with everything the registry records about it.

    `pipeline` is what serves: refitted on every row unless the job said not to.
    `holdout_pipeline` is the one fitted without the hold-out, which the metrics
    describe and which comparisons with other versions must use.
    """

    pipeline: Pipeline
    algorithm: str
    params: dict[str, Any]
    dataset: Dataset
    metrics: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    best_params: dict[str, Any] | None = None
    cv_results: list[dict[str, Any]] | None = None
    # The stratified hold-out the metrics were measured on (never fitted on).
    holdout_texts: list[str] = field(default_factory=list)
    holdout_labels: list[str] = field(default_factory=list)
    holdout_pipeline: Pipeline | None = None

    @property
    def evaluated_pipeline(self) -> Pipeline:
        """The pipeline the hold-out metrics were measured on (never fitted on the hold-out)."""
        return self.pipeline if self.holdout_pipeline is None else self.holdout_pipeline

    @property
    def classes(self) -> list[str]:
        """Category labels in the pipeline's column order."""
        return [str(c) for c in self.pipeline.classes_]


def fit_model(
    dataset: Dataset,
    *,
    algorithm: str = DEFAULT_ALGORITHM,
    params: dict[str, Any] | None = None,
    grid: dict[str, list[Any]] | None = None,
    test_size: float = DEFAULT_TEST_SIZE,
    refit: bool = True,
    progress: Progress = _no_progress,
    fit_progress: FitListener = _no_fit_progress,
) -> TrainedModel:
    """Fit on a stratified split, evaluate on the held-out part, then refit on every row.

    The hold-out metrics describe the pipeline fitted on the training part; with
    `refit` (the default) the same pipeline, with the same parameters, is then
    fitted on all rows and that one serves: throwing the hold-out away costs
    accuracy, most on small catalogs (docs/model.md). Calibration and the scope
    test stay out-of-fold either way. With `refit` False the evaluated pipeline
    serves, as before. With a `grid`, the candidates are compared by
    cross-validated macro-F1 on the training part only (GridSearchCV) and the
    best one, refitted, is what gets evaluated.

    The independent fits run where `app.ml.parallel.training_parallelism` says
    (one at a time without it); `fit_progress` hears of each as it finishes.
    """
    if algorithm not in ALGORITHMS:
        choices = ", ".join(ALGORITHMS)
        raise TrainingError(f"unknown algorithm {algorithm!r}; choose one of {choices}")
    if not 0.05 <= test_size <= 0.5:
        raise TrainingError(f"test size must be between 0.05 and 0.5, got {test_size}")
    dataset.validate_for_training(test_size)
    try:
        pipeline = build_pipeline(algorithm, params)
    except ValueError as exc:
        raise TrainingError(f"invalid params: {exc}") from None

    timings: dict[str, float] = {}
    x_train, x_test, y_train, y_test = split_holdout(
        dataset.texts, dataset.labels, test_size=test_size, seed=SPLIT_SEED
    )
    total = planned_fits(
        pipeline,
        y_train,
        dataset.labels,
        candidates=len(ParameterGrid(grid)) if grid else 0,
        refit=refit,
    )
    with counting_fits(total, fit_progress):
        return _fit_counted(
            pipeline,
            dataset,
            (x_train, x_test, y_train, y_test),
            algorithm=algorithm,
            params=params,
            grid=grid,
            test_size=test_size,
            refit=refit,
            progress=progress,
            timings=timings,
        )


def _fit_counted(
    pipeline: Pipeline,
    dataset: Dataset,
    split: tuple[list[str], list[str], list[str], list[str]],
    *,
    algorithm: str,
    params: dict[str, Any] | None,
    grid: dict[str, list[Any]] | None,
    test_size: float,
    refit: bool,
    progress: Progress,
    timings: dict[str, float],
) -> TrainedModel:
    x_train, x_test, y_train, y_test = split

    best_params: dict[str, Any] | None = None
    cv_results: list[dict[str, Any]] | None = None
    if grid:
        progress("search")
        started = time.perf_counter()
        search = GridSearchCV(
            pipeline,
            grid,
            scoring="f1_macro",
            cv=StratifiedKFold(SEARCH_FOLDS, shuffle=True, random_state=SPLIT_SEED),
            # Candidates one after another in this process: each one's own fits are
            # what run in parallel, here, where they can be counted for the progress.
            n_jobs=1,
            refit=True,
            error_score="raise",
        )
        try:
            search.fit(x_train, y_train)
        except ValueError as exc:
            raise TrainingError(f"parameter search failed: {exc}") from None
        pipeline = search.best_estimator_
        best_params = {k: _jsonable(v) for k, v in search.best_params_.items()}
        cv_results = _summarise_search(search.cv_results_)
        timings["search"] = time.perf_counter() - started
    else:
        progress("vectorise")
        started = time.perf_counter()
        features = pipeline.named_steps["features"]
        matrix = features.fit_transform(x_train)
        timings["vectorise"] = time.perf_counter() - started

        progress("fit + calibrate")
        started = time.perf_counter()
        try:
            if isinstance(pipeline, OpenSetPipeline):
                pipeline.fit_classifier(x_train, matrix, y_train)
            else:
                pipeline.named_steps["clf"].fit(matrix, y_train)
        except ValueError as exc:
            raise TrainingError(f"fit failed: {exc}") from None
        timings["fit + calibrate"] = time.perf_counter() - started

    progress("evaluate")
    started = time.perf_counter()
    metrics = evaluate(pipeline, x_test, y_test)
    if isinstance(pipeline, OpenSetPipeline):
        metrics["in_scope_share"] = float(pipeline.in_scope(x_test).mean())
        metrics["scope_alpha"] = pipeline.scope_alpha
    metrics["train_rows"] = len(x_train)
    metrics["test_size"] = test_size
    timings["evaluate"] = time.perf_counter() - started

    served = pipeline
    metrics["refit"] = refit
    metrics["fitted_rows"] = len(x_train)
    if refit:
        progress("refit")
        started = time.perf_counter()
        served = clone(pipeline)
        try:
            served.fit(dataset.texts, dataset.labels)
        except ValueError as exc:
            raise TrainingError(f"refit on every row failed: {exc}") from None
        metrics["fitted_rows"] = len(dataset.texts)
        timings["refit"] = time.perf_counter() - started

    progress("verify")
    started = time.perf_counter()
    metrics["fast_path_max_abs_diff"] = verify_fast_path(served, x_test)
    timings["verify"] = time.perf_counter() - started

    return TrainedModel(
        pipeline=served,
        holdout_pipeline=pipeline if refit else None,
        algorithm=algorithm,
        params=_effective_params(pipeline, {**(params or {}), **(best_params or {})}),
        dataset=dataset,
        metrics=metrics,
        timings=timings,
        best_params=best_params,
        cv_results=cv_results,
        holdout_texts=list(x_test),
        holdout_labels=list(y_test),
    )


def fitted_texts(dataset: Dataset, test_size: float, refit: bool = False) -> set[str]:
    """The names `fit_model(dataset, test_size=test_size, refit=refit)` served from.

    All of them after a refit; without one, all but the hold-out.
    """
    if refit:
        return set(dataset.texts)
    x_train, _, _, _ = split_holdout(
        dataset.texts, dataset.labels, test_size=test_size, seed=SPLIT_SEED
    )
    return set(x_train)


@dataclass(frozen=True)
class HoldoutComparison:
    """The new model and the active version scored on the same hold-out rows."""

    active_version: str
    active_macro_f1: float
    new_macro_f1: float
    rows: int
    # False when every hold-out row was one the active version was fitted on, so the
    # whole hold-out is used (which flatters the active version: the safe side).
    unseen_only: bool

    def as_metrics(self) -> dict[str, Any]:
        """The comparison as the job's and the version's metrics record it."""
        return {
            "active_version_compared": self.active_version,
            "active_macro_f1_same_holdout": self.active_macro_f1,
            "new_macro_f1_same_holdout": self.new_macro_f1,
            "same_holdout_rows": self.rows,
            "same_holdout_unseen_only": self.unseen_only,
        }


def compare_on_holdout(
    trained: TrainedModel, active: Any, active_version: str, active_fitted: set[str]
) -> HoldoutComparison:
    """Score `trained` and the `active` pipeline on the same rows of `trained`'s hold-out.

    Rows the active version was fitted on are left out: it would answer them from
    memory, and every retrain that keeps the base data would look like a drop.
    `active` is the active version's hold-out pipeline when it was refitted (a
    refitted pipeline has seen every row of its data).
    """
    rows = [
        (text, label)
        for text, label in zip(trained.holdout_texts, trained.holdout_labels, strict=True)
        if text not in active_fitted
    ]
    unseen_only = bool(rows)
    if not rows:
        rows = list(zip(trained.holdout_texts, trained.holdout_labels, strict=True))
    texts = [text for text, _ in rows]
    labels = [label for _, label in rows]
    return HoldoutComparison(
        active_version=active_version,
        active_macro_f1=float(evaluate(active, texts, labels)["macro_f1"]),
        new_macro_f1=float(evaluate(trained.evaluated_pipeline, texts, labels)["macro_f1"]),
        rows=len(rows),
        unseen_only=unseen_only,
    )


def _summarise_search(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per candidate: its params and cross-validated macro-F1, best first."""
    rows = [
        {
            "params": {k: _jsonable(v) for k, v in params.items()},
            "mean_macro_f1": float(mean),
            "std_macro_f1": float(std),
            "rank": int(rank),
        }
        for params, mean, std, rank in zip(
            results["params"],
            results["mean_test_score"],
            results["std_test_score"],
            results["rank_test_score"],
            strict=True,
        )
    ]
    return sorted(rows, key=lambda row: row["rank"])


def verify_fast_path(pipeline: Pipeline, texts: list[str]) -> float | None:
    """Largest |fast path - predict_proba| over `texts`, or None if unsupported."""
    check = check_fast_path(pipeline, lambda: texts)
    if check.unsupported_reason is not None:
        logger.warning("fast path unsupported", extra={"reason": check.unsupported_reason})
    elif not check.exact:
        logger.warning(
            "fast path differs from predict_proba", extra={"max_abs_diff": check.max_abs_diff}
        )
    return check.max_abs_diff


def _effective_params(pipeline: Pipeline, requested: dict[str, Any] | None) -> dict[str, Any]:
    """The requested overrides plus the classifier's own scalar settings, JSON-safe."""
    clf = clone(pipeline.named_steps["clf"])
    own = {
        f"clf__{k}": v
        for k, v in clf.get_params(deep=False).items()
        if isinstance(v, str | int | float | bool) or v is None
    }
    return {**own, **{k: _jsonable(v) for k, v in (requested or {}).items()}}


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return repr(value)
