"""Serving predictions from the active model version, swapped atomically when it changes.

A version with a stored scorer (`app/ml/scorer_bundle.py`) is served from its
memory-mapped arrays: the worker never unpickles the pipeline nor imports
scikit-learn. Older versions, and pipelines the scorer cannot reproduce, are
served from the joblib pipeline, with the fast path derived in memory when it
agrees with the pipeline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.errors import ModelNotReady
from app.core.memory import release_free_memory
from app.core.metrics import Metrics
from app.crud import model_version as crud
from app.db.models import ModelVersion
from app.ml.artifacts import ArtifactError, load_artifact, verify_artifact
from app.ml.dataset import read_csv
from app.ml.explain import Explanation
from app.ml.fast_path import FastScorer
from app.ml.scope import in_scope
from app.ml.scorer_bundle import BundleError, load_bundle

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

logger = logging.getLogger(__name__)

# How many of a version's own training rows are re-scored at load time to prove
# the fast path still matches the pipeline in this process.
_LOAD_CHECK_ROWS = 200
_RETRY_FAILED_LOAD_SECONDS = 30.0
# A batch at least this large has its freed temporaries handed back to the
# operating system at once (see `predict`).
_TRIM_AFTER_NAMES = 256
# The review threshold of versions trained before versions chose their own.
FALLBACK_REVIEW_THRESHOLD = 0.5


@dataclass(frozen=True)
class Ranked:
    """One prediction: the best category, its probability, the top-k ranking and its scope."""

    category: str
    score: float
    top_k: list[tuple[str, float]]
    # False when the name's words are unlike the training data's (app/ml/scope.py).
    in_scope: bool = True
    # Asked for with `explain`; None when not asked or the version has no fast scorer.
    explanation: Explanation | None = None


@dataclass(frozen=True)
class ServingModel:
    """A loaded version. Immutable: a swap replaces the whole object at once.

    Exactly one of `scorer` and `pipeline` is used: the scorer when there is one
    (stored or derived), the pipeline only when the fast path cannot reproduce it.
    """

    version: str
    sha256: str
    pipeline: Pipeline | None
    scorer: FastScorer | None
    classes: np.ndarray
    # "stored scorer", "derived scorer" or "pipeline", for the logs.
    source: str
    # The version's own review threshold (from its hold-out), when it recorded one.
    review_threshold: float | None = None

    def probabilities(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities, one row per name, and each name's scope factor."""
        if self.scorer is None:
            assert self.pipeline is not None
            texts = list(names)
            proba = np.asarray(self.pipeline.predict_proba(texts), dtype=np.float64)
            scope_factor = getattr(self.pipeline, "scope_factor", None)
            factor = np.ones(len(texts)) if scope_factor is None else scope_factor(texts)
            return proba, factor
        if len(names) == 1:
            one, factor_one = self.scorer.score_one(names[0])
            return one[None, :], np.array([factor_one])
        return self.scorer.score_many(names)

    def explain(self, name: str, top_k: int = 1) -> Ranked:
        """`rank` of one name, with the terms behind its category when a scorer serves."""
        if self.scorer is None:
            return self.rank([name], top_k)[0]
        proba, factor, explanation = self.scorer.explain_one(name)
        ranked = self._ranked(proba[None, :], np.array([factor]), top_k)[0]
        return replace(ranked, explanation=explanation)

    def rank(self, names: Sequence[str], top_k: int = 1) -> list[Ranked]:
        """The top `top_k` categories of each name, best first."""
        proba, factor = self.probabilities(names)
        return self._ranked(proba, factor, top_k)

    def _ranked(self, proba: np.ndarray, factor: np.ndarray, top_k: int) -> list[Ranked]:
        accepted = in_scope(factor)
        k = min(top_k, proba.shape[1])
        if k == 1:
            order = proba.argmax(axis=1)[:, None]
        else:
            # A stable sort of the negated scores keeps ties in class order, as argmax does.
            order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        results = []
        for row, idx, scoped in zip(proba, order, accepted, strict=True):
            ranking = [(str(self.classes[j]), float(row[j])) for j in idx]
            results.append(Ranked(ranking[0][0], ranking[0][1], ranking, bool(scoped)))
        return results


@dataclass(frozen=True)
class Predictions:
    """Rankings of a batch of names, in input order, and the version that made them."""

    model_version: str
    ranked: list[Ranked]
    # The version's own review threshold, if it recorded one.
    review_threshold: float | None = None

    def needs_review(self, ranked: Ranked, threshold: float) -> bool:
        """True when `ranked` is out of scope or scored below `threshold`."""
        return not ranked.in_scope or ranked.score < threshold


# The version a preloading server's master loaded before forking its workers
# (`preload_for_workers`). A worker asked to serve that same version takes this
# object, whose vocabularies and mapped weights are pages it shares with the
# master and every other worker, instead of building a private copy.
_inherited: ServingModel | None = None


def preload_for_workers(
    sessions: sessionmaker[Session], model_dir: Path, metrics: Metrics
) -> str | None:
    """Load the registry's active version in a process about to fork its workers.

    Checked exactly as a worker checks a load. Returns the version when one was
    loaded now; None when there is none, it is the one already preloaded, or it
    does not load (each worker then loads, or fails to load, on its own, and
    says why in its log).
    """
    global _inherited
    service = PredictionService(sessions, model_dir, metrics)
    pointer = service._read_pointer()
    current = _inherited
    if pointer is None or (current is not None and (current.version, current.sha256) == pointer):
        return None
    try:
        loaded = service.load(pointer[0])
    except (ArtifactError, OSError, ValueError) as exc:
        logger.warning(
            "preloading the model failed", extra={"version": pointer[0], "error": str(exc)}
        )
        return None
    # The version it replaces goes: workers forked from now on share the new one.
    _inherited = loaded
    del current
    release_free_memory()
    return loaded.version


class PredictionService:
    """Holds the active model of this process and follows the registry's active pointer."""

    def __init__(self, sessions: sessionmaker[Session], model_dir: Path, metrics: Metrics) -> None:
        self._sessions = sessions
        self._model_dir = model_dir
        self._metrics = metrics
        self._model: ServingModel | None = None
        # Serialises loads only; readers take `self._model` without locking, since
        # assigning one attribute is atomic and the object itself never changes.
        self._load_lock = threading.Lock()
        self.last_error: str | None = None
        self._failed: tuple[tuple[str, str] | None, float] | None = None

    @property
    def model(self) -> ServingModel | None:
        """The model serving now, or None before any version is active."""
        return self._model

    @property
    def serving_version(self) -> str | None:
        """The version serving now, if any."""
        model = self._model
        return None if model is None else model.version

    def require_model(self) -> ServingModel:
        """The serving model, or ModelNotReady (503) when there is none."""
        model = self._model
        if model is None:
            raise ModelNotReady()
        return model

    def predict(self, names: Sequence[str], top_k: int = 1, explain: bool = False) -> Predictions:
        """Rank each name's top `top_k` categories; ModelNotReady (503) without a model.

        With `explain` (one name only), the answer says which terms made its category.
        """
        model = self.require_model()
        if explain and len(names) == 1:
            ranked = [model.explain(names[0], top_k)]
        else:
            ranked = model.rank(names, top_k)
        if len(ranked) == 1:
            self._metrics.count_prediction(ranked[0].category)
        else:
            for category, count in Counter(r.category for r in ranked).items():
                self._metrics.count_prediction(category, count)
        self._metrics.observe_scores(
            model.version, [r.score for r in ranked], [r.in_scope for r in ranked]
        )
        if len(names) >= _TRIM_AFTER_NAMES:
            # Scoring a batch allocates names × categories floats several times
            # over; glibc keeps such freed heap for reuse, so every worker would
            # carry its largest batch's temporaries for good (measured: 8 MiB
            # after 1,000 names on the shipped model, more with more categories).
            # Trimming costs about 0.2 ms against tens of milliseconds of scoring.
            release_free_memory()
        return Predictions(model.version, ranked, model.review_threshold)

    def sync(self, *, wait_for_loads: bool = False) -> bool:
        """Load the registry's active version if it is not the one serving; True on a swap.

        One small query; called at start-up and then every few seconds off the
        request path. A version that fails to load is logged and the current
        model keeps serving. With `wait_for_loads`, a load already under way is
        waited for first, so that on return this worker serves what the
        registry says now (used right after an activation).
        """
        if not wait_for_loads:
            pointer = self._read_pointer()
            if self._is_current(pointer) or self._recently_failed(pointer):
                return False
        # Serialised, and the pointer re-read inside: a slow load started by one
        # caller must not overwrite a newer activation another caller has seen.
        with self._load_lock:
            pointer = self._read_pointer()
            if pointer is None or self._is_current(pointer):
                return False
            version = pointer[0]
            try:
                loaded = self._load(version)
            except (ArtifactError, OSError, ValueError) as exc:
                self._failed = (pointer, time.monotonic())
                self.last_error = f"cannot load {version}: {exc}"
                logger.error("model load failed", extra={"version": version, "error": str(exc)})
                return False
            previous, self._model = self._model, loaded
            self.last_error = None
            if previous is not None:
                self._metrics.set_serving(previous.version, False)
            self._metrics.set_serving(loaded.version, True)
        # The load's temporary objects, and the replaced model unless a request
        # still holds it, are freed by now; without this the heap keeps their pages.
        del previous
        release_free_memory()
        logger.info(
            "serving model version",
            extra={"version": version, "source": loaded.source},
        )
        return True

    def _read_pointer(self) -> tuple[str, str] | None:
        with self._sessions() as session:
            row = crud.active_pointer(session)
        return None if row is None else (row[0], row[1])

    def _is_current(self, pointer: tuple[str, str] | None) -> bool:
        """True when there is nothing to load: no active version, or it is already loaded."""
        if pointer is None:
            return True
        current = self._model
        return current is not None and (current.version, current.sha256) == pointer

    def _recently_failed(self, pointer: tuple[str, str] | None) -> bool:
        # A broken artifact is retried now and then (it may be restored), not on
        # every tick, which would fill the log with the same error.
        failed = self._failed
        return (
            failed is not None
            and failed[0] == pointer
            and time.monotonic() - failed[1] < _RETRY_FAILED_LOAD_SECONDS
        )

    def close(self) -> None:
        """Stop reporting this worker's model as served (the gauge outlives the process)."""
        model = self._model
        if model is not None:
            self._metrics.set_serving(model.version, False)

    def load(self, version: str) -> ServingModel:
        """`version` loaded exactly as this worker loads it to serve, without serving it.

        The same checksums and the same choice of stored scorer, derived scorer or
        pipeline, hence the same answers as the API. ArtifactError when the version
        is not registered or its files are missing or altered.
        """
        return self._load(version)

    def _load(self, version: str) -> ServingModel:
        with self._sessions() as session:
            row = crud.get_version(session, version)
        if row is None:
            raise ArtifactError(f"version {version} vanished from the registry")
        inherited = _inherited
        if inherited is not None and (inherited.version, inherited.sha256) == (
            row.version,
            row.sha256,
        ):
            # Checked in full (every file's SHA-256, the check rows) when the master
            # loaded it; a version's files are written once. The threshold is re-read.
            return replace(
                inherited,
                source=f"{inherited.source}, preloaded",
                review_threshold=_review_threshold(row),
            )
        if row.scorer_file and row.scorer_sha256:
            # Every file of a version is checked, the pipeline too although it is
            # not loaded: an altered file means the version is not what was trained.
            verify_artifact(self._model_dir / row.artifact_file, row.sha256)
            try:
                scorer = load_bundle(self._model_dir, row.scorer_file, row.scorer_sha256)
            except BundleError as exc:
                # The pickled pipeline is checked on its own and serves the same answers.
                logger.warning(
                    "stored scorer refused; serving from the pipeline",
                    extra={"version": version, "reason": str(exc)},
                )
            else:
                return ServingModel(
                    row.version,
                    row.sha256,
                    None,
                    scorer,
                    scorer.classes,
                    "stored scorer",
                    _review_threshold(row),
                )
        return self._load_pipeline(row)

    def _load_pipeline(self, row: ModelVersion) -> ServingModel:
        pipeline = load_artifact(
            self._model_dir / row.artifact_file, row.sha256, row.library_versions
        )
        scorer = self._checked_scorer(pipeline, self._model_dir / row.data_file)
        return ServingModel(
            version=row.version,
            sha256=row.sha256,
            # Kept only when the scorer cannot stand in for it.
            pipeline=pipeline if scorer is None else None,
            scorer=scorer,
            classes=np.asarray([str(c) for c in pipeline.classes_]),
            source="pipeline" if scorer is None else "derived scorer",
            review_threshold=_review_threshold(row),
        )

    @staticmethod
    def _checked_scorer(pipeline: Pipeline, data_file: Path) -> FastScorer | None:
        """The fast path, if it reproduces the pipeline on sample rows; else None."""
        # Imported here: only versions without a stored scorer need scikit-learn.
        from app.ml.fast_path_check import check_fast_path

        def sample() -> list[str]:
            try:
                return read_csv(data_file).texts[:_LOAD_CHECK_ROWS]
            except ValueError:
                return [str(c) for c in pipeline.classes_]

        check = check_fast_path(pipeline, sample)
        if check.unsupported_reason is not None:
            logger.warning(
                "fast path unsupported; using predict_proba",
                extra={"reason": check.unsupported_reason},
            )
            return None
        if not check.exact:
            logger.warning(
                "fast path disagrees with the pipeline; using predict_proba",
                extra={"max_abs_diff": check.max_abs_diff},
            )
            return None
        return check.scorer


def _review_threshold(row: ModelVersion) -> float | None:
    """The threshold the version chose on its hold-out; None for versions older than that."""
    review = (row.metrics or {}).get("review")
    threshold = review.get("threshold") if isinstance(review, dict) else None
    if isinstance(threshold, int | float) and 0.0 <= threshold <= 1.0:
        return float(threshold)
    return None


def review_threshold(min_score: float | None, settings: Settings, result: Predictions) -> float:
    """The request's `min_score`, else REVIEW_THRESHOLD, else the version's own threshold."""
    for threshold in (min_score, settings.review_threshold, result.review_threshold):
        if threshold is not None:
            return threshold
    return FALLBACK_REVIEW_THRESHOLD
