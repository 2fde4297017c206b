"""A version's stored scorer: what workers serve from, checked byte for byte and row for row."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import update

from app.core.config import Settings
from app.core.metrics import setup_metrics
from app.db.database import open_database
from app.db.models import ModelVersion
from app.ml import fast_path_check
from app.ml.fast_path import FLOAT32_TOLERANCE, Precision
from app.ml.scorer_bundle import BundleError, load_bundle
from app.ml.training import TrainedModel
from app.services.models import ArtifactConflict, ModelRegistry
from app.services.prediction import PredictionService
from tests.support import REPO_ROOT, TEST_SECRET_KEY, install_model

NAMES = ["susu ultra coklat 250ml", "Indomie Goreng 85g", "", "日本語 ｘ２", "zzzz qqqq"]


@pytest.fixture
def installed(settings: Settings, tiny_model: TrainedModel) -> ModelVersion:
    saved = install_model(settings, tiny_model)
    with open_database(settings.database_url, migrate=False) as database:
        with database.sessions() as session:
            return ModelRegistry(session, settings.model_dir).get(saved.version)


@pytest.fixture
def service(settings: Settings) -> Iterator[PredictionService]:
    with open_database(settings.database_url, migrate=False) as database:
        predictions = PredictionService(database.sessions, settings.model_dir, setup_metrics())
        yield predictions
        predictions.close()


def _bundle(settings: Settings, row: ModelVersion) -> Path:
    assert row.scorer_file is not None
    return (settings.model_dir / row.scorer_file).parent


def _record(settings: Settings, version: str, **values: str | None) -> None:
    """Change `version`'s registry row directly, as a tampered database would."""
    with open_database(settings.database_url, migrate=False) as database:
        with database.sessions() as session:
            session.execute(
                update(ModelVersion).where(ModelVersion.version == version).values(**values)
            )
            session.commit()


def _rewrite(path: Path, change: bytes) -> None:
    data = bytearray(path.read_bytes())
    # The last bytes of an .npy file are array data, never its header.
    data[-len(change) :] = change
    path.write_bytes(bytes(data))


def test_a_saved_version_is_served_from_its_stored_scorer(
    installed: ModelVersion, service: PredictionService, tiny_model: TrainedModel
) -> None:
    assert installed.scorer_file == f"{installed.version}.scorer/manifest.json"
    assert service.sync()
    model = service.require_model()
    assert model.source == "stored scorer"
    assert model.pipeline is None
    np.testing.assert_allclose(
        model.probabilities(NAMES)[0], tiny_model.pipeline.predict_proba(NAMES), rtol=0, atol=1e-9
    )
    # The weights are read from the page cache, not copied into the worker.
    assert isinstance(model.scorer.parts.weights.base, np.memmap)  # type: ignore[union-attr]


_PROBE = """
import json, sys
HEAVY = {"sklearn", "scipy", "nltk", "joblib", "alembic"}
from fastapi.testclient import TestClient
from app.core.config import load_settings
from app.main import create_app
with TestClient(create_app(load_settings())) as client:
    ready = client.get("/ready").status_code
    model = client.app.state.runtime.predictions.require_model()
    top = model.rank(["susu ultra coklat 250ml"])[0].category
print(json.dumps({
    "ready": ready,
    "source": model.source,
    "top": top,
    "loaded": sorted({m.split(".")[0] for m in sys.modules} & HEAVY),
}))
"""


def test_a_serving_worker_never_imports_scikit_learn_nor_alembic(
    settings: Settings, installed: ModelVersion, tiny_model: TrainedModel, tmp_path: Path
) -> None:
    (tmp_path / "metrics").mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "ENVIRONMENT": "development",
        "SECRET_KEY": TEST_SECRET_KEY,
        "DATABASE_URL": settings.database_url,
        "MODEL_DIR": str(settings.model_dir),
        "DATA_DIR": str(settings.data_dir),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["ready"] == 200
    assert probe["source"] == "stored scorer"
    assert probe["top"] == tiny_model.pipeline.predict(["susu ultra coklat 250ml"])[0]
    assert probe["loaded"] == []


def test_altered_weights_are_refused_and_the_pipeline_serves_instead(
    settings: Settings,
    installed: ModelVersion,
    service: PredictionService,
    tiny_model: TrainedModel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _rewrite(_bundle(settings, installed) / "weights.npy", b"\x00" * 8)
    assert service.sync()
    model = service.require_model()
    assert model.source == "derived scorer"
    assert "stored scorer refused" in caplog.text
    np.testing.assert_allclose(
        model.probabilities(NAMES)[0], tiny_model.pipeline.predict_proba(NAMES), rtol=0, atol=1e-9
    )
    with open_database(settings.database_url, migrate=False) as database:
        with database.sessions() as session:
            with pytest.raises(ArtifactConflict, match="stored scorer"):
                ModelRegistry(session, settings.model_dir).activate(installed.version)


def test_every_file_of_the_bundle_is_checksummed(
    settings: Settings, installed: ModelVersion
) -> None:
    vocabulary = _bundle(settings, installed) / "vocabulary-0.json"
    terms = json.loads(vocabulary.read_bytes())
    # Still valid, same size: only the hash can tell the columns were swapped.
    terms[0], terms[1] = terms[1], terms[0]
    vocabulary.write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(BundleError, match="vocabulary-0.json"):
        load_bundle(settings.model_dir, installed.scorer_file or "", installed.scorer_sha256 or "")


def test_a_scorer_that_strays_from_its_check_rows_is_refused(
    settings: Settings, installed: ModelVersion
) -> None:
    # Consistent hashes throughout, as if the arrays were intact but this process
    # computed differently: only re-scoring the check rows can notice.
    bundle = _bundle(settings, installed)
    check = bundle / "check-proba.npy"
    _rewrite(check, np.float64(0.5).tobytes())
    manifest = json.loads((bundle / "manifest.json").read_bytes())
    manifest["files"]["check-proba.npy"] = hashlib.sha256(check.read_bytes()).hexdigest()
    data = json.dumps(manifest).encode()
    (bundle / "manifest.json").write_bytes(data)
    sha256 = hashlib.sha256(data).hexdigest()
    with pytest.raises(BundleError, match="strays"):
        load_bundle(settings.model_dir, installed.scorer_file or "", sha256)


@pytest.mark.parametrize(
    "manifest_file", ["../elsewhere/manifest.json", "/etc/manifest.json", "v1.0.0.scorer/x.json"]
)
def test_a_manifest_outside_the_model_directory_is_refused(
    settings: Settings, installed: ModelVersion, manifest_file: str
) -> None:
    _record(settings, installed.version, scorer_file=manifest_file)
    with pytest.raises(BundleError, match="not a bundle manifest inside the model directory"):
        load_bundle(settings.model_dir, manifest_file, installed.scorer_sha256 or "")


def test_a_version_saved_before_bundles_is_served_from_its_pipeline(
    settings: Settings, installed: ModelVersion, service: PredictionService
) -> None:
    _record(settings, installed.version, scorer_file=None, scorer_sha256=None)
    assert service.sync()
    assert service.require_model().source == "derived scorer"


def _save(settings: Settings, trained: TrainedModel, precision: Precision) -> ModelVersion:
    with open_database(settings.database_url, migrate=True) as database:
        with database.sessions() as session:
            registry = ModelRegistry(session, settings.model_dir)
            saved = registry.save(trained, activate=True, precision=precision)
            return registry.get(saved.version)


def test_float32_weights_take_half_the_bytes_and_change_no_category(
    settings: Settings, shipped_model: TrainedModel
) -> None:
    exact = _save(settings, shipped_model, "float64")
    rounded = _save(settings, shipped_model, "float32")
    manifest = json.loads((settings.model_dir / (rounded.scorer_file or "")).read_bytes())
    assert manifest["weights_dtype"] == "float32"
    size = {
        row.version: (_bundle(settings, row) / "weights.npy").stat().st_size
        for row in (exact, rounded)
    }
    assert size[rounded.version] < 0.51 * size[exact.version]

    with open_database(settings.database_url, migrate=False) as database:
        service = PredictionService(database.sessions, settings.model_dir, setup_metrics())
        try:
            assert service.sync()
            model = service.require_model()
        finally:
            service.close()
    assert (model.version, model.source) == (rounded.version, "stored scorer")
    assert model.scorer is not None and model.scorer.parts.weights.dtype == np.float32
    texts = [*shipped_model.dataset.texts, *NAMES]
    served, _ = model.probabilities(texts)
    truth = shipped_model.pipeline.predict_proba(texts)
    assert np.abs(served - truth).max() <= FLOAT32_TOLERANCE
    assert (served.argmax(axis=1) == truth.argmax(axis=1)).all()


def test_float32_is_not_stored_when_rounding_strays_beyond_its_tolerance(
    settings: Settings,
    tiny_model: TrainedModel,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # No tolerance at all: any rounding is too much, so the exact weights are kept.
    monkeypatch.setattr(fast_path_check, "FLOAT32_TOLERANCE", 0.0)
    row = _save(settings, tiny_model, "float32")
    manifest = json.loads((settings.model_dir / (row.scorer_file or "")).read_bytes())
    assert manifest["weights_dtype"] == "float64"
    assert "float32 weights would change answers" in caplog.text
