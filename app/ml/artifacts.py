"""Writing and loading model artifacts: atomic, checksummed, version-checked joblib files."""

from __future__ import annotations

import hashlib
import io
import platform
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import scipy
import sklearn
from sklearn.pipeline import Pipeline

from app.ml.dataset import atomic_write_bytes

__all__ = ["ArtifactError", "library_versions", "load_artifact", "save_artifact", "sha256_file"]


class ArtifactError(RuntimeError):
    """An artifact that must not be loaded (missing, altered, or from another scikit-learn)."""


def library_versions() -> dict[str, str]:
    """Versions that decide whether a pickled pipeline behaves the same when loaded."""
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "joblib": joblib.__version__,
    }


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def save_artifact(pipeline: Pipeline, path: Path) -> str:
    """Persist `pipeline` atomically at `path` and return the SHA-256 of what was written."""
    buffer = io.BytesIO()
    # compress=3 roughly halves the size of the TF-IDF vocabularies for a small load cost.
    joblib.dump(pipeline, buffer, compress=3)
    data = buffer.getvalue()
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def load_artifact(path: Path, expected_sha256: str, recorded_versions: dict[str, str]) -> Any:
    """Load a pipeline only if its bytes and scikit-learn version are the ones recorded.

    The check happens before unpickling: joblib files execute code when loaded, and a
    pipeline pickled by another scikit-learn may load yet predict differently.
    """
    recorded = recorded_versions.get("scikit-learn")
    if recorded != sklearn.__version__:
        raise ArtifactError(
            f"{path.name} was trained with scikit-learn {recorded}, but {sklearn.__version__} "
            "is installed; retrain it (python train.py) or install the recorded version"
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"artifact {path} does not exist") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise ArtifactError(
            f"artifact {path.name} does not match its recorded SHA-256 "
            f"(expected {expected_sha256[:12]}..., found {actual[:12]}...); refusing to load it"
        )
    return joblib.load(io.BytesIO(data))
