"""train.py, the dataset reader and the model registry: versions, artifacts, refusals."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sklearn
from sqlalchemy import update

from app.core.config import Settings
from app.db.models import ModelVersion
from app.db.session import create_db_engine, create_session_factory
from app.ml.artifacts import ArtifactError, load_artifact
from app.ml.dataset import DatasetError, parse_csv
from app.ml.training import TrainedModel
from app.services.models import ArtifactConflict, ModelRegistry
from tests.support import (
    REPO_ROOT,
    TINY_CSV,
    InProcess,
    Registry,
    bearer,
    install_model,
    serve,
    token_for,
)

TRAIN_PY = REPO_ROOT / "train.py"


def run_train(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATABASE_URL")},
        "SECRET_KEY": settings.secret_key or "",
        "DATABASE_URL": settings.database_url,
        "MODEL_DIR": str(settings.model_dir),
        "DATA_DIR": str(settings.data_dir),
    }
    return subprocess.run(
        [sys.executable, str(TRAIN_PY), *args],
        env=env,
        cwd=settings.model_dir.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )


def registry_rows(settings: Settings) -> list[ModelVersion]:
    engine = create_db_engine(settings.database_url)
    try:
        with create_session_factory(engine)() as session:
            return list(ModelRegistry(session, settings.model_dir).list())
    finally:
        engine.dispose()


def test_train_py_shows_stages_and_metrics_and_registers_versions(settings: Settings) -> None:
    first = run_train(settings, "--data", str(TINY_CSV))
    assert first.returncode == 0, first.stderr
    for stage in ("load", "vectorise", "fit + calibrate", "evaluate", "save"):
        assert stage in first.stderr
    for metric in ("accuracy", "macro-F1", "weighted-F1", "ECE", "precision", "recall"):
        assert metric in first.stdout
    assert "Saved v1.0.0" in first.stdout and "active" in first.stdout

    second = run_train(settings, "--data", str(TINY_CSV), "--algorithm", "logistic_regression")
    assert second.returncode == 0, second.stderr
    third = run_train(settings, "--data", str(TINY_CSV), "--no-activate", "--test-size", "0.3")
    assert third.returncode == 0, third.stderr
    assert "not activated" in third.stdout

    rows = {row.version: row for row in registry_rows(settings)}
    assert sorted(rows) == ["v1.0.0", "v1.0.1", "v1.0.2"]
    assert [v for v, row in rows.items() if row.is_active] == ["v1.0.1"]
    latest = rows["v1.0.2"]
    artifact = settings.model_dir / latest.artifact_file
    assert hashlib.sha256(artifact.read_bytes()).hexdigest() == latest.sha256
    assert latest.data_rows == 78
    assert len(latest.classes) == 6
    assert latest.library_versions["scikit-learn"] == sklearn.__version__
    assert latest.metrics["test_size"] == 0.3
    matrix = latest.metrics["confusion_matrix"]
    assert sum(map(sum, matrix["matrix"])) == latest.metrics["n_samples"]
    assert set(latest.metrics["per_class"]) == set(latest.classes)
    assert rows["v1.0.1"].algorithm == "logistic_regression"
    # Atomic writes leave no temporary files behind.
    assert not [p for p in settings.model_dir.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param("name_of_product,cat\nsusu,Susu\n", "missing product name column", id="cols"),
        pytest.param("product_name,category\n" + "susu a,Susu\n" * 20, "at least 2", id="1-class"),
        pytest.param(
            "product_name,category\n"
            + "".join(f"susu {i},Susu\n" for i in range(10))
            + "kopi 1,Kopi\nkopi 2,Kopi\n",
            "too few rows for 'Kopi' (2)",
            id="few-rows",
        ),
        pytest.param("product_name,category\n", "no usable rows", id="empty"),
    ],
)
def test_train_py_refuses_bad_data_with_one_line(
    settings: Settings, tmp_path: Path, content: str, reason: str
) -> None:
    data = tmp_path / "bad.csv"
    data.write_text(content)
    result = run_train(settings, "--data", str(data))
    assert result.returncode == 1
    assert reason in result.stderr
    # The progress display marks the stage that failed; the reason is one line.
    reasons = [line for line in result.stderr.splitlines() if line.startswith("train.py:")]
    assert len(reasons) == 1
    assert "failed" in result.stderr
    assert "Traceback" not in result.stderr
    assert not registry_rows(settings)


def test_train_py_refuses_non_utf8_and_missing_files(settings: Settings, tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("product_name,category\ncaf\xe9 susu,Susu\n".encode("latin-1"))
    result = run_train(settings, "--data", str(latin1))
    assert result.returncode == 1 and "not UTF-8" in result.stderr
    missing = run_train(settings, "--data", str(tmp_path / "nope.csv"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    help_text = run_train(settings, "--help")
    assert help_text.returncode == 0 and "--no-activate" in help_text.stdout


def test_dataset_reader_accepts_the_original_column_names_and_later_rows_win() -> None:
    data = (
        b"item_name,Fixed Category Code\n"
        b"Indomie Goreng,Mie Instan\n"
        b"  susu ultra  ,Susu\n"
        b"Indomie Goreng,Makanan Ringan\n"
        b",Susu\n"
    )
    dataset = parse_csv(data, "upload.csv")
    assert dataset.texts == ["susu ultra", "Indomie Goreng"]
    assert dataset.labels == ["Susu", "Makanan Ringan"]
    assert dataset.dropped_rows == 1
    with pytest.raises(DatasetError, match="not a text CSV"):
        parse_csv(b"product_name,category\nsu\x00su,Susu\n", "nul.csv")


def test_tampered_artifact_is_refused_and_not_served(
    settings: Settings, tiny_model: TrainedModel
) -> None:
    saved = install_model(settings, tiny_model)
    row = registry_rows(settings)[0]
    artifact = settings.model_dir / row.artifact_file
    with pytest.raises(ArtifactError, match="SHA-256"):
        load_artifact(artifact, "0" * 64, row.library_versions)
    artifact.write_bytes(artifact.read_bytes() + b"\x00")

    with serve(settings) as api:
        Registry(api.app).add()  # type: ignore[arg-type]
        response = api.post(
            "/predict/", json={"product_name": "susu"}, headers=bearer(token_for(api))
        )
        services = InProcess(api).runtime
        assert response.status_code == 503
        assert "SHA-256" in (services.predictions.last_error or "")
        with services.session() as session, pytest.raises(ArtifactConflict, match="SHA-256"):
            ModelRegistry(session, services.settings.model_dir, services.predictions).activate(
                saved.version
            )


def test_artifact_from_another_scikit_learn_is_refused(
    settings: Settings, tiny_model: TrainedModel
) -> None:
    install_model(settings, tiny_model)
    engine = create_db_engine(settings.database_url)
    with engine.begin() as connection:
        connection.execute(
            update(ModelVersion).values(
                library_versions={"scikit-learn": "0.24.2", "python": "3.8.0"}
            )
        )
    engine.dispose()
    row = registry_rows(settings)[0]
    with pytest.raises(ArtifactError, match=r"scikit-learn 0\.24\.2.*retrain"):
        load_artifact(settings.model_dir / row.artifact_file, row.sha256, row.library_versions)
