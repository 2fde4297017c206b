"""Whether a freshly trained version may serve: the same-hold-out comparison and the floors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.core.config import Settings
from app.db.models import ModelVersion
from app.ml.algorithms import DEFAULT_TEST_SIZE
from app.ml.artifacts import ArtifactError, load_artifact
from app.ml.dataset import DatasetError
from app.ml.training import (
    HoldoutComparison,
    TrainedModel,
    TrainingError,
    compare_on_holdout,
    fitted_texts,
)
from app.services.models import ModelRegistry


def activation_blockers(
    settings: Settings, comparison: HoldoutComparison | None, new_f1: float
) -> list[str]:
    """Why the new version must not be activated automatically (empty: it may be)."""
    reasons = []
    if new_f1 < settings.min_macro_f1:
        reasons.append(f"macro-F1 {new_f1:.4f} is below MIN_MACRO_F1 {settings.min_macro_f1:.4f}")
    if comparison is not None and comparison.new_macro_f1 < (
        comparison.active_macro_f1 - settings.max_f1_drop
    ):
        reasons.append(
            f"macro-F1 {comparison.new_macro_f1:.4f} is more than MAX_F1_DROP "
            f"{settings.max_f1_drop:.4f} below the active {comparison.active_version}'s "
            f"{comparison.active_macro_f1:.4f} on the same hold-out ({comparison.rows} rows)"
        )
    return reasons


def compare_with_active(
    session: Session, model_dir: Path, trained: TrainedModel
) -> HoldoutComparison | None:
    """Score the active version on the new model's hold-out; None when nothing is active.

    Rows the active version was fitted on are left out of the comparison (it
    would score them from memory); both models are scored on the rest.
    """
    registry = ModelRegistry(session, model_dir)
    active = registry.active()
    if active is None:
        return None
    try:
        pipeline = _holdout_pipeline(registry, active)
        # That pipeline was fitted on every row of its data but its hold-out.
        seen = fitted_texts(
            registry.training_data(active),
            float(active.metrics.get("test_size", DEFAULT_TEST_SIZE)),
        )
    except (ArtifactError, DatasetError, ValueError) as exc:
        raise TrainingError(
            f"the active version {active.version} could not be scored on the new hold-out "
            f"({exc}); activate the new version by hand if it is better"
        ) from None
    return compare_on_holdout(trained, pipeline, active.version, seen)


def _holdout_pipeline(registry: ModelRegistry, active: ModelVersion) -> Any:
    """The active version's pipeline as fitted without its hold-out.

    A refitted version keeps it beside its artifact (`holdout_artifact` in its
    metrics); a version that was not refitted serves it.
    """
    stored = active.metrics.get("holdout_artifact")
    if isinstance(stored, dict):
        path = registry.model_file(str(stored.get("file")))
        return load_artifact(path, str(stored.get("sha256")), active.library_versions)
    if active.metrics.get("refit"):
        raise ArtifactError("its hold-out pipeline was not kept")
    return load_artifact(registry.artifact_path(active), active.sha256, active.library_versions)
