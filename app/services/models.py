"""The model registry: immutable versions on disk and in the database, one of them active."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import Conflict, NotFound
from app.crud import model_version as crud
from app.crud import shadow
from app.db.models import ModelVersion
from app.ml.artifacts import library_versions, save_artifact, sha256_file
from app.ml.dataset import Dataset, read_csv, write_csv
from app.ml.fast_path import Precision
from app.ml.scorer_bundle import BundleError, load_bundle
from app.schemas.training import ActiveModel
from app.services.audit import AuditAction, AuditTrail

if TYPE_CHECKING:
    from app.ml.training import TrainedModel

logger = logging.getLogger(__name__)

# Two writers racing for the same version number is rare (train.py beside the API);
# retrying a handful of times is enough.
_VERSION_ATTEMPTS = 5


class ModelVersionNotFound(NotFound):
    """No version with this name is registered."""

    def __init__(self, version: str) -> None:
        super().__init__(f"model version {version!r} does not exist")
        self.version = version


class ArtifactConflict(Conflict):
    """A version whose artifact is missing or altered cannot be activated (409)."""


class ServingModelStore(Protocol):
    """What the registry tells when the active version changes: this worker's model store."""

    @property
    def serving_version(self) -> str | None: ...

    def sync(self, *, wait_for_loads: bool = False) -> bool: ...


@dataclass(frozen=True)
class SavedVersion:
    """What a caller needs after saving: the version and whether it now serves."""

    version: str
    sha256: str
    is_active: bool


class ModelRegistry:
    """Saves, lists and activates model versions (artifacts under `model_dir`)."""

    def __init__(
        self, session: Session, model_dir: Path, store: ServingModelStore | None = None
    ) -> None:
        self._session = session
        self._model_dir = model_dir
        # This process's serving model, when there is one to keep in step (a web worker).
        self._store = store

    def artifact_path(self, row: ModelVersion) -> Path:
        """Where `row`'s artifact lives."""
        return self._model_dir / row.artifact_file

    def model_file(self, name: str) -> Path:
        """A file of the model directory named in a version's record; ValueError otherwise."""
        path = (self._model_dir / name).resolve()
        if path.parent != self._model_dir.resolve():
            raise ValueError(f"{name!r} is not a file of the model directory")
        return path

    def list(self) -> Sequence[ModelVersion]:
        """Every version, newest first."""
        return crud.list_versions(self._session)

    def get(self, version: str) -> ModelVersion:
        """One version's row, or ModelVersionNotFound."""
        row = crud.get_version(self._session, version)
        if row is None:
            raise ModelVersionNotFound(version)
        return row

    def active(self) -> ModelVersion | None:
        """The active version, if any."""
        return crud.get_active(self._session)

    def active_model(self) -> ActiveModel:
        """The active version's summary (no per-class detail) and what this worker serves."""
        serving = self._store.serving_version if self._store is not None else None
        row = self.active()
        if row is None:
            return ActiveModel(
                trained=False,
                message="No model is trained yet. "
                "Train one with `python train.py` or POST /training/.",
            )
        metrics = {
            k: v
            for k, v in row.metrics.items()
            if k not in ("per_class", "confusion_matrix", "reliability")
        }
        review = metrics.get("review")
        if isinstance(review, dict):
            # The threshold is a headline; its 100-point curve is detail.
            metrics["review"] = {k: v for k, v in review.items() if k != "coverage_precision"}
        return ActiveModel(
            trained=True,
            version=row.version,
            serving_version=serving,
            algorithm=row.algorithm,
            best_params=row.best_params,
            params=row.params,
            metrics=metrics,
            classes=row.classes,
            created_at=row.created_at,
            activated_at=row.activated_at,
        )

    def next_version(self) -> str:
        """The name the next saved version will get."""
        return crud.next_version(self._session)

    def training_data(self, row: ModelVersion) -> Dataset:
        """Exactly the rows `row` was trained and evaluated on."""
        return read_csv(self._model_dir / row.data_file, source=f"training data of {row.version}")

    def save(
        self,
        trained: TrainedModel,
        *,
        activate: bool,
        version: str | None = None,
        precision: Precision = "float64",
    ) -> SavedVersion:
        """Write the artifact and data snapshot, record the version, optionally activate it.

        Files are written before the row so a row never points at a missing file;
        a crash in between leaves only unreferenced files behind. The stored
        scorer, when the pipeline has one, is what workers serve from.
        """
        # Imported here: only training processes save, and the API must not load sklearn.
        from app.ml.fast_path_check import export_scorer

        for _ in range(_VERSION_ATTEMPTS):
            name = version or self.next_version()
            artifact = self._model_dir / f"{name}.joblib"
            data_file = self._model_dir / f"{name}.train.csv"
            sha256 = save_artifact(trained.pipeline, artifact)
            metrics = _recorded_metrics(trained)
            if trained.holdout_pipeline is not None:
                # A refitted version has seen all its rows; the pipeline fitted
                # without its hold-out is what later versions are compared with.
                holdout = self._model_dir / f"{name}.holdout.joblib"
                metrics["holdout_artifact"] = {
                    "file": holdout.name,
                    "sha256": save_artifact(trained.holdout_pipeline, holdout),
                }
            write_csv(trained.dataset, data_file)
            bundle = export_scorer(
                trained.pipeline, self._model_dir, name, trained.dataset.texts, precision
            )
            try:
                crud.create_version(
                    self._session,
                    version=name,
                    artifact_file=artifact.name,
                    sha256=sha256,
                    scorer_file=None if bundle is None else bundle.manifest_file,
                    scorer_sha256=None if bundle is None else bundle.manifest_sha256,
                    algorithm=trained.algorithm,
                    params=trained.params,
                    classes=trained.classes,
                    data_file=data_file.name,
                    data_rows=len(trained.dataset),
                    data_sha256=trained.dataset.sha256,
                    data_sources=trained.dataset.sources,
                    metrics=metrics,
                    library_versions=library_versions(),
                    created_at=datetime.now(UTC),
                )
                if activate:
                    now = datetime.now(UTC)
                    crud.set_active(self._session, name, now)
                    shadow.end_runs_on_activation(self._session, name, now)
                self._session.commit()
            except IntegrityError:
                self._session.rollback()
                if version is not None:
                    raise
                # Another process took this number; our files were overwritten by
                # ours only, and the next attempt writes under a new name.
                continue
            logger.info("model version saved", extra={"version": name, "active": activate})
            return SavedVersion(version=name, sha256=sha256, is_active=activate)
        raise RuntimeError("could not allocate a model version number")

    def check_intact(self, version: str) -> ModelVersion:
        """`version`'s record, once its artifact (and stored scorer) pass their checks.

        ModelVersionNotFound for an unknown version; ArtifactConflict when a file
        is missing, unreadable or altered.
        """
        row = self.get(version)
        path = self.artifact_path(row)
        if not path.exists():
            raise ArtifactConflict(
                f"artifact of {version} is missing ({path.name}); cannot activate"
            )
        try:
            intact = sha256_file(path) == row.sha256
        except OSError as exc:
            raise ArtifactConflict(f"artifact of {version} cannot be read: {exc}") from None
        if not intact:
            raise ArtifactConflict(
                f"artifact of {version} does not match its recorded SHA-256; cannot activate"
            )
        if row.scorer_file and row.scorer_sha256:
            try:
                load_bundle(self._model_dir, row.scorer_file, row.scorer_sha256)
            except BundleError as exc:
                raise ArtifactConflict(f"stored scorer of {version}: {exc}") from None
        return row

    def activate(self, version: str) -> ModelVersion:
        """Make `version` the one every worker serves; its artifact must be intact.

        This worker's store switches before returning; the others at their next
        registry check. An open shadow run ends (app/services/shadow.py).
        """
        row = self.check_intact(version)
        now = datetime.now(UTC)
        crud.set_active(self._session, version, now)
        shadow.end_runs_on_activation(self._session, version, now)
        self._session.commit()
        self._session.refresh(row)
        logger.info("model version activated", extra={"version": version})
        if self._store is not None:
            self._store.sync(wait_for_loads=True)
        return row


def activate_audited(
    registry: ModelRegistry, audit: AuditTrail, version: str, *, actor: str
) -> ModelVersion:
    """`registry.activate(version)` recorded as `model.activate` (with the version it
    replaces), a refusal (Conflict: artifact missing or altered) as a failure."""
    previous = registry.active()
    with audit.recording(
        actor=actor, action=AuditAction.model_activate, target=version, refusals=(Conflict,)
    ) as event:
        event.detail["previous"] = previous.version if previous else None
        return registry.activate(version)


def _recorded_metrics(trained: TrainedModel) -> dict[str, object]:
    metrics: dict[str, object] = {**trained.metrics, "timings": trained.timings}
    if trained.best_params is not None:
        metrics["search"] = {"best_params": trained.best_params, "cv_results": trained.cv_results}
    return metrics
