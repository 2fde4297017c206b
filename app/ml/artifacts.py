"""Writing and loading model artifacts: atomic, checksummed, version-checked joblib files.

Importing this module imports neither scikit-learn nor SciPy (versions are read
from package metadata): the API's registry uses it, and a serving worker that
loads a stored scorer never needs either library.
"""

from __future__ import annotations

import hashlib
import io
import platform
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.ml.dataset import atomic_write_bytes

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

__all__ = [
    "ArtifactError",
    "library_versions",
    "load_artifact",
    "save_artifact",
    "sha256_file",
    "verify_artifact",
]


class ArtifactError(RuntimeError):
    """An artifact that must not be loaded (missing, altered, or from another scikit-learn)."""


def library_versions() -> dict[str, str]:
    """Versions that decide whether a pickled pipeline behaves the same when loaded."""
    return {
        "python": platform.python_version(),
        "scikit-learn": version("scikit-learn"),
        "numpy": version("numpy"),
        "scipy": version("scipy"),
        "joblib": version("joblib"),
    }


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def save_artifact(pipeline: Pipeline, path: Path) -> str:
    """Persist `pipeline` atomically at `path` and return the SHA-256 of what was written."""
    import joblib  # here: 13 MB that only writers and the pickle fallback need

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
    import joblib  # here: 13 MB that only writers and the pickle fallback need

    recorded = recorded_versions.get("scikit-learn")
    installed = version("scikit-learn")
    if recorded != installed:
        raise ArtifactError(
            f"{path.name} was trained with scikit-learn {recorded}, but {installed} "
            "is installed; retrain it (python train.py) or install the recorded version"
        )
    data = _read(path)
    _check_sha256(path, hashlib.sha256(data).hexdigest(), expected_sha256)
    return joblib.load(io.BytesIO(data))


def verify_artifact(path: Path, expected_sha256: str) -> None:
    """ArtifactError unless the file at `path` has the recorded SHA-256 (nothing is loaded)."""
    _check_sha256(path, hashlib.sha256(_read(path)).hexdigest(), expected_sha256)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"artifact {path} does not exist") from None


def _check_sha256(path: Path, actual: str, expected: str) -> None:
    if actual != expected:
        raise ArtifactError(
            f"artifact {path.name} does not match its recorded SHA-256 "
            f"(expected {expected[:12]}..., found {actual[:12]}...); refusing to load it"
        )
