"""Training on several cores or a Dask cluster gives the same model as on one core.

The fits of a job (calibration folds and final fits) run through joblib; where they
run must change nothing a user can see: the served scorer bundle is the same byte
for byte, and so is every probability. Progress counts them as they finish.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pytest
from pydantic import ValidationError

from app.core.config import Settings, environment_without_settings
from app.ml.dataset import Dataset, read_csv, write_csv
from app.ml.evaluation import top_classes
from app.ml.fast_path_check import export_scorer
from app.ml.parallel import FitProgress, training_parallelism
from app.ml.pipeline import build_pipeline
from app.ml.training import fit_model
from tests.support import REPO_ROOT, SHIPPED_CSV
from tests.support.cluster import local_cluster


@pytest.fixture(scope="module")
def catalog() -> Dataset:
    """A 2,000-row stratified slice of the shipped catalog: seconds to train, 30 categories."""
    full = read_csv(SHIPPED_CSV)
    rows = list(zip(full.texts, full.labels, strict=True))[::3][:2000]
    texts = [text for text, _ in rows]
    labels = [label for _, label in rows]
    return Dataset(texts=texts, labels=labels, sources=full.sources)


def _fit(catalog: Dataset, **where: object) -> object:
    with training_parallelism(**where):  # type: ignore[arg-type]
        pipeline = build_pipeline()
        pipeline.fit(catalog.texts, catalog.labels)
    return pipeline


def _served_bundle_sha(pipeline: object, directory: Path, texts: list[str]) -> str:
    bundle = export_scorer(pipeline, directory, "v9.9.9", texts, "float64")
    assert bundle is not None
    return bundle.manifest_sha256


def _assert_same_model(one: object, other: object, texts: list[str], tmp_path: Path) -> None:
    clf_one = one.named_steps["clf"]  # type: ignore[attr-defined]
    clf_other = other.named_steps["clf"]  # type: ignore[attr-defined]
    assert np.array_equal(clf_one.estimator_.coef_, clf_other.estimator_.coef_)
    assert np.array_equal(clf_one.estimator_.intercept_, clf_other.estimator_.intercept_)
    assert np.array_equal(clf_one.calibration_theta_, clf_other.calibration_theta_)
    probe = texts[:300] + ["produk yang tidak dikenal sama sekali", "zzz qqq 999"]
    assert np.array_equal(
        one.predict_proba(probe),  # type: ignore[attr-defined]
        other.predict_proba(probe),  # type: ignore[attr-defined]
    )
    assert _served_bundle_sha(one, tmp_path / "one", texts) == _served_bundle_sha(
        other, tmp_path / "other", texts
    )


@pytest.fixture(scope="module")
def one_core(catalog: Dataset) -> object:
    return _fit(catalog, cores=1)


def test_two_cores_train_the_same_model_as_one(
    catalog: Dataset, one_core: object, tmp_path: Path
) -> None:
    _assert_same_model(one_core, _fit(catalog, cores=2), catalog.texts, tmp_path)


def test_the_saved_artifact_differs_only_in_how_pickle_shares_objects(
    catalog: Dataset, one_core: object
) -> None:
    # Why the joblib file's own hash is not the same: a fit that comes back from a
    # worker process is a copy, so objects the one-core pipeline shares (and pickle
    # writes once) are written twice. Loaded back, the two artifacts answer alike.
    two_cores = _fit(catalog, cores=2)
    loaded = []
    for pipeline in (one_core, two_cores):
        buffer = io.BytesIO()
        joblib.dump(pipeline, buffer)
        buffer.seek(0)
        loaded.append(joblib.load(buffer))
    texts = catalog.texts[:200]
    assert np.array_equal(loaded[0].predict_proba(texts), loaded[1].predict_proba(texts))


def test_a_local_dask_cluster_trains_the_same_model_as_one_core(
    catalog: Dataset, one_core: object, tmp_path: Path
) -> None:
    with local_cluster() as cluster:
        on_cluster = _fit(catalog, cluster=cluster.scheduler_address)
    _assert_same_model(one_core, on_cluster, catalog.texts, tmp_path)


def test_progress_counts_every_planned_fit_once(catalog: Dataset) -> None:
    heard: list[FitProgress] = []
    with training_parallelism(cores=2):
        trained = fit_model(catalog, fit_progress=heard.append)
    assert trained.metrics["refit"] is True
    # Five calibration folds and the final fit, for the hold-out model and the refit.
    assert [p.done for p in heard] == list(range(13))
    assert {p.total for p in heard} == {12}
    assert heard[0].eta_seconds is None and heard[-1].eta_seconds == 0
    assert all(p.eta_seconds is not None and p.eta_seconds >= 0 for p in heard[1:])


def test_progress_counts_the_fits_of_a_grid_search(catalog: Dataset) -> None:
    heard: list[FitProgress] = []
    fit_model(catalog, grid={"clf__C": [0.5, 1.0]}, refit=False, fit_progress=heard.append)
    # 2 candidates x 3 search folds x 6 fits, then the best one on the training part.
    assert heard[-1] == FitProgress(done=42, total=42, eta_seconds=0)


@pytest.mark.parametrize(
    "value", ["http://127.0.0.1:8786", "tcp://host;rm -rf /", "tcp://", "file:///etc/passwd"]
)
def test_training_cluster_accepts_only_a_scheduler_address(value: str) -> None:
    with pytest.raises(ValidationError, match="training_cluster"):
        Settings(_env_file=None, secret_key="x" * 32, training_cluster=value)


def test_training_cores_is_bounded_and_leaves_a_core_by_default() -> None:
    assert Settings(_env_file=None, secret_key="x" * 32, training_cores=3).training_cores == 3
    default = Settings(_env_file=None, secret_key="x" * 32).training_cores
    assert default == max(1, len(os.sched_getaffinity(0)) - 1)
    with pytest.raises(ValidationError, match="training_cores"):
        Settings(_env_file=None, secret_key="x" * 32, training_cores=257)
    with pytest.raises(ValidationError, match="training_cores"):
        Settings(_env_file=None, secret_key="x" * 32, training_cores=0)


def _train_py(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **environment_without_settings(),
        "SECRET_KEY": "k" * 40,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'garoupa.db'}",
        "MODEL_DIR": str(tmp_path / "models"),
    }
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "train.py"), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def small_csv(tmp_path: Path, catalog: Dataset) -> Iterator[Path]:
    path = tmp_path / "small.csv"
    write_csv(Dataset(texts=catalog.texts[:900], labels=catalog.labels[:900]), path)
    yield path


def test_train_py_trains_on_the_cores_it_is_given(tmp_path: Path, small_csv: Path) -> None:
    refused = _train_py(tmp_path, "--cores", "0")
    assert refused.returncode == 2 and "--cores: must be from 1 to 256" in refused.stderr
    # The API's allow-list guards the command line's parameters too.
    unsafe = _train_py(tmp_path, "--data", str(small_csv), "--param", 'memory="/tmp/planted"')
    assert unsafe.returncode == 1 and "'memory' cannot be set" in unsafe.stderr
    tiny = _train_py(tmp_path, "--param", "features__char__max_features=10")
    assert tiny.returncode == 1 and "an integer from 1,000 to 10,000,000" in tiny.stderr
    done = _train_py(
        tmp_path,
        "--data",
        str(small_csv),
        "--cores",
        "2",
        "--param",
        "features__char__max_features=2000",
    )
    assert done.returncode == 0, done.stderr
    # The display counts the fits (rich writes plain lines when stderr is not a terminal).
    assert "fits 12/12" in done.stderr
    assert "Saved v1.0.0" in done.stdout


def test_a_capped_vocabulary_trains_and_serves_exactly(catalog: Dataset) -> None:
    capped = {"features__word__max_features": 1_000, "features__char__max_features": 3_000}
    with training_parallelism(cores=2):
        trained = fit_model(catalog, params=capped, refit=False)
    vectorizers = dict(trained.pipeline.named_steps["features"].transformer_list)
    assert len(vectorizers["word"].vocabulary_) == 1_000
    assert len(vectorizers["char"].vocabulary_) == 3_000
    assert trained.params["features__char__max_features"] == 3_000
    # The served fast path reproduces the capped pipeline.
    assert trained.metrics["fast_path_max_abs_diff"] <= 1e-9
    assert trained.metrics["macro_f1"] > 0.8


def test_past_max_calibration_rows_the_map_is_fitted_on_a_sample(catalog: Dataset) -> None:
    all_rows = build_pipeline()
    all_rows.fit(catalog.texts, catalog.labels)
    sampled = build_pipeline(params={"clf__max_calibration_rows": 1_000})
    sampled.fit(catalog.texts, catalog.labels)
    full_clf, sampled_clf = all_rows.named_steps["clf"], sampled.named_steps["clf"]
    assert full_clf.calibration_rows_ == len(catalog) and sampled_clf.calibration_rows_ == 1_000
    # The SVC itself is fitted on every row either way; only the three-parameter map
    # moves, and it keeps the arg-max.
    assert np.array_equal(full_clf.estimator_.coef_, sampled_clf.estimator_.coef_)
    assert not np.array_equal(full_clf.calibration_theta_, sampled_clf.calibration_theta_)
    texts = catalog.texts[:300]
    assert np.array_equal(all_rows.predict(texts), sampled.predict(texts))
    difference = np.abs(all_rows.predict_proba(texts) - sampled.predict_proba(texts)).max()
    assert difference < 0.1


def test_evaluation_in_chunks_scores_as_in_one_piece(one_core: object, catalog: Dataset) -> None:
    texts = catalog.texts[:500]
    whole_top, whole_confidence = top_classes(one_core, texts, chunk=len(texts))
    top, confidence = top_classes(one_core, texts, chunk=7)
    assert np.array_equal(top, whole_top) and np.array_equal(confidence, whole_confidence)
    proba = one_core.predict_proba(texts)  # type: ignore[attr-defined]
    assert np.array_equal(top, proba.argmax(axis=1))
