"""Retraining through HTTP: uploads, jobs in their own process, registry, feedback, crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from app.api.deps import get_launcher
from app.core.config import Settings
from app.core.errors import Conflict
from app.db.models import TrainingJob
from app.ml.training import TrainedModel
from app.services.models import ModelRegistry
from app.services.training_jobs import TrainingJobService, this_host
from app.services.training_plan import TrainingPlan
from tests.polling import poll_json
from tests.support import (
    REPO_ROOT,
    SHIPPED_CSV,
    TINY_CSV,
    Api,
    InProcess,
    Registry,
    assert_search_chose_the_best,
    bearer,
    csv_bytes,
    install_model,
    make_settings,
    open_api,
    serve,
    shipped_rows,
    token_for,
)


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    """For conftest's `api`: quick model refresh, and a small upload limit to exceed."""
    return make_settings(tmp_path, model_refresh_seconds=0.2, max_upload_bytes=64 * 1024)


def test_full_lifecycle_upload_train_poll_serve_roll_back(api: Api) -> None:
    new_rows = shipped_rows("Teh", 12)
    upload = api.post("/datasets/", files={"file": ("teh.csv", csv_bytes(new_rows), "text/csv")})
    # A single category is not a training set on its own.
    assert upload.status_code == 422
    assert "at least 2 categories" in upload.json()["detail"]

    new_rows += shipped_rows("Kopi", 8)
    upload = api.post("/datasets/", files={"file": ("new.csv", csv_bytes(new_rows), "text/csv")})
    assert upload.status_code == 201, upload.text
    stored = upload.json()
    assert stored["rows"] == 20
    assert stored["class_counts"] == {"Teh": 12, "Kopi": 8}
    assert stored["data_path"].startswith("uploads/") and "new.csv" not in stored["data_path"]

    accepted = api.train(new_data_path="data/" + stored["data_path"])
    assert accepted["message"] == "Training job started successfully."
    assert accepted["new_model_version"] == "v1.0.1"
    assert accepted["status_url"] == f"/training/{accepted['job_id']}"
    job = api.wait(accepted["job_id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["produced_version"] == "v1.0.1" and job["activated"] is True, job["message"]
    assert job["source"] == "api" and job["requested_by"] == "svc"
    assert job["duration_seconds"] > 0 and job["percent"] == 100
    # Every fit it planned was counted, and nothing is left to wait for.
    assert job["fits_total"] >= 6 and job["fits_done"] == job["fits_total"]
    assert job["elapsed_seconds"] == pytest.approx(job["duration_seconds"], abs=0.01)
    assert job["eta_seconds"] is None
    # Base rows (78) plus the 20 new ones, none shared.
    assert job["data_rows"] == 78 + 20
    assert job["base_version"] == "v1.0.0"
    assert {"accuracy", "macro_f1", "per_class"} <= set(job["metrics"])

    assert api.serves_within("v1.0.1")
    detail = api.get("/models/v1.0.1").json()
    assert "Teh" in detail["classes"] and detail["data_rows"] == 98
    assert "Teh" in detail["metrics"]["confusion_matrix"]["labels"]
    active = api.get("/models/active").json()
    assert active["trained"] is True and active["version"] == "v1.0.1"
    listed = [m["version"] for m in api.get("/models/").json()["models"]]
    assert listed == ["v1.0.1", "v1.0.0"]
    assert [j["job_id"] for j in api.get("/training/").json()["jobs"]] == [accepted["job_id"]]

    rolled_back = api.post("/models/v1.0.0/activate")
    assert rolled_back.status_code == 200 and rolled_back.json()["is_active"] is True
    assert api.serves_within("v1.0.0")
    assert api.get("/models/active").json()["version"] == "v1.0.0"


def test_include_base_data_false_trains_on_the_new_rows_only(api: Api) -> None:
    rows = shipped_rows("Teh", 10) + shipped_rows("Kopi", 10)
    api.write_data("fresh.csv", csv_bytes(rows))
    job = api.wait(
        api.train(new_data_path="fresh.csv", include_base_data=False, activate=False)["job_id"]
    )
    assert job["status"] == "succeeded", job["error"]
    assert job["data_rows"] == 20 and job["base_version"] is None
    assert job["activated"] is False
    detail = api.get(f"/models/{job['produced_version']}").json()
    assert sorted(detail["classes"]) == ["Kopi", "Teh"]
    assert detail["is_active"] is False
    assert api.served_version() == "v1.0.0"


def test_feedback_reaches_the_next_version(api: Api) -> None:
    correction = {
        "product_name": "kopi susu gula aren literan 1 liter",
        "category": "Susu",
        "predicted_category": "Kopi",
        "model_version": "v1.0.0",
    }
    created = api.post("/feedback/", json=correction)
    assert created.status_code == 201, created.text
    assert created.json()["client_id"] == "svc"
    listed = api.get("/feedback/", params={"model_version": "v1.0.0"}).json()
    assert listed["total"] == 1 and listed["items"][0]["category"] == "Susu"
    assert api.get("/feedback/", params={"model_version": "v9.9.9"}).json()["total"] == 0

    with_feedback = api.wait(api.train(activate=False)["job_id"])
    without = api.wait(api.train(activate=False, include_feedback=False)["job_id"])
    assert with_feedback["status"] == without["status"] == "succeeded"
    assert with_feedback["data_rows"] == 79 and without["data_rows"] == 78
    with api.direct.runtime.session() as session:
        registry = ModelRegistry(session, api.settings.model_dir)
        trained_on = registry.training_data(registry.get(with_feedback["produced_version"]))
        not_trained_on = registry.training_data(registry.get(without["produced_version"]))
    assert (
        dict(zip(trained_on.texts, trained_on.labels, strict=True))[correction["product_name"]]
        == "Susu"
    )
    assert correction["product_name"] not in not_trained_on.texts


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"model_version": "v9.9.9"}, "does not exist"),
        ({"category": "   "}, "category"),
        ({"product_name": "???"}, "product_name"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_invalid_feedback_is_a_422(api: Api, body: dict[str, Any], needle: str) -> None:
    payload = {"product_name": "indomie goreng", "category": "Mie Instan", **body}
    response = api.post("/feedback/", json=payload)
    assert response.status_code == 422
    assert needle in response.text


def test_reading_feedback_needs_the_train_scope(api: Api) -> None:
    predict_only = bearer(token_for(api.client, scope="predict"))
    assert api.client.get("/feedback/", headers=predict_only).status_code == 403
    assert api.client.post("/training/", json={}, headers=predict_only).status_code == 403
    assert api.client.get("/models/", headers=predict_only).status_code == 403


def test_grid_search_records_best_params_and_cv_scores(api: Api) -> None:
    job = api.wait(
        api.train(
            algorithm="logistic_regression",
            params={"clf__C": [0.5, 20.0], "clf__class_weight": "balanced"},
            activate=False,
        )["job_id"]
    )
    assert job["status"] == "succeeded", job["error"]
    assert_search_chose_the_best(job, {"clf__C": [0.5, 20.0]})
    # Best first: the list a reader sees opens with the chosen candidate.
    assert job["cv_results"][0]["params"] == job["best_params"]
    detail = api.get(f"/models/{job['produced_version']}").json()
    assert detail["best_params"] == job["best_params"]
    assert detail["params"]["clf__class_weight"] == "balanced"


def test_a_second_job_while_one_is_open_gets_409_naming_it(api: Api) -> None:
    api.write_data("big.csv", SHIPPED_CSV.read_bytes())
    first = api.train(
        new_data_path="big.csv",
        algorithm="logistic_regression",
        params={"clf__C": [1.0, 10.0, 30.0]},
        activate=False,
    )
    second = api.post("/training/", json={"new_data_path": "big.csv"})
    assert second.status_code == 409
    assert first["job_id"] in second.json()["detail"]
    # Cancelled rather than waited for: the rule is what is tested, not the grid.
    cancel = api.client.delete(f"/training/{first['job_id']}", headers=api.auth)
    assert cancel.status_code == 200
    assert api.wait(first["job_id"])["status"] == "failed"


def test_the_database_admits_one_open_job_under_a_race(api: Api) -> None:
    plan = TrainingPlan(None, None, "logistic_regression", {}, {}, True, False, False)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def create() -> None:
        with api.direct.runtime.session() as session:
            barrier.wait()
            try:
                TrainingJobService(session, api.settings).create(
                    plan, source="api", requested_by="race"
                )
                outcomes.append("created")
            except Conflict:
                outcomes.append("conflict")

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * 3 + ["created"]


def test_train_py_respects_the_one_job_rule(api: Api) -> None:
    plan = TrainingPlan(None, None, "logistic_regression", {}, {}, True, False, False)
    with api.direct.runtime.session() as session:
        job = TrainingJobService(session, api.settings).create(
            plan, source="api", requested_by="holder"
        )
    env = {
        **os.environ,
        "SECRET_KEY": api.settings.secret_key or "",
        "DATABASE_URL": api.settings.database_url,
        "MODEL_DIR": str(api.settings.model_dir),
    }
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "train.py"), "--data", str(TINY_CSV)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert job.job_id in result.stderr and "one job runs at a time" in result.stderr


def test_sigkill_mid_fit_fails_the_job_and_keeps_the_old_model(api: Api) -> None:
    api.write_data("big.csv", SHIPPED_CSV.read_bytes())
    accepted = api.train(
        new_data_path="big.csv",
        algorithm="logistic_regression",
        params={"clf__C": [1.0, 10.0, 30.0]},
    )
    job_id = accepted["job_id"]
    poll_json(
        lambda: api.get(f"/training/{job_id}"),
        lambda job: job["stage"] == "search",
        timeout=300,
        what="job reaching the search stage",
        interval=0.1,
    )
    with api.direct.runtime.session() as session:
        pid = session.query(TrainingJob).filter_by(job_id=job_id).one().pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()

    # Waits past the bound under test, so that a late failure is measured, not cut off.
    job = api.wait(job_id, timeout=120)
    noticed_after = time.monotonic() - killed_at
    assert noticed_after < 30, f"the killed job was failed only after {noticed_after:.0f} s"
    assert job["status"] == "failed"
    assert "signal 9" in job["error"] or "ended without reporting" in job["error"]
    assert job["produced_version"] is None
    assert [m["version"] for m in api.get("/models/").json()["models"]] == ["v1.0.0"]
    assert not (api.settings.model_dir / f"{accepted['new_model_version']}.joblib").exists()
    assert api.served_version() == "v1.0.0"
    # The slot is free again.
    assert api.wait(api.train(activate=False)["job_id"])["status"] == "succeeded"


def test_a_job_whose_process_died_while_no_server_ran_fails_at_start_up(
    tmp_path: Path, tiny_model: TrainedModel
) -> None:
    settings = make_settings(tmp_path)
    install_model(settings, tiny_model)
    with serve(settings) as client:
        services = InProcess(client).runtime
        plan = TrainingPlan(None, None, "logistic_regression", {}, {}, True, False, False)
        with services.session() as session:
            job = TrainingJobService(session, services.settings).create(
                plan, source="api", requested_by="gone"
            )
            dead = subprocess.Popen(["true"])
            dead.wait()
            session.execute(
                TrainingJob.__table__.update()
                .where(TrainingJob.job_id == job.job_id)
                .values(status="running", host=this_host(), pid=dead.pid)
            )
            session.commit()
    with serve(settings) as client:
        Registry(client.app).add()  # type: ignore[arg-type]
        status = client.get(f"/training/{job.job_id}", headers=bearer(token_for(client))).json()
    assert status["status"] == "failed"
    assert str(dead.pid) in status["error"]


def test_quality_floor_keeps_the_version_but_does_not_activate_it(
    tmp_path: Path, tiny_model: TrainedModel
) -> None:
    settings = make_settings(tmp_path, min_macro_f1=0.9999, model_refresh_seconds=0.2)
    with open_api(settings, tiny_model) as api:
        job = api.wait(api.train()["job_id"])
        assert job["status"] == "succeeded"
        assert job["activated"] is False
        assert "MIN_MACRO_F1" in job["message"]
        assert api.get(f"/models/{job['produced_version']}").status_code == 200
        assert api.get("/models/active").json()["version"] == "v1.0.0"


def _symlink_out(api: Api) -> str:
    outside = api.settings.data_dir.parent / "outside.csv"
    outside.write_bytes(TINY_CSV.read_bytes())
    (api.settings.data_dir / "link.csv").symlink_to(outside)
    return "link.csv"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/etc/passwd", 400),
        ("../outside.csv", 400),
        ("data/../../outside.csv", 400),
        ("uploads\\..\\x.csv", 400),
        ("symlink", 400),
        (".", 400),
        ("missing.csv", 404),
        ("data/missing.csv", 404),
    ],
)
def test_data_paths_are_confined_to_the_data_directory(api: Api, path: str, status: int) -> None:
    if path == "symlink":
        path = _symlink_out(api)
    response = api.post("/training/", json={"new_data_path": path})
    assert response.status_code == status, response.text
    assert isinstance(response.json()["detail"], str)
    assert api.get("/training/").json()["jobs"] == []


@pytest.mark.parametrize(
    ("content", "body", "needle"),
    [
        ("café,Susu\n".encode("latin-1"), {}, "not UTF-8"),
        (csv_bytes([("a", "b")], header=("title", "category")), {}, "missing product name column"),
        (
            csv_bytes([(f"teh {i}", "Teh") for i in range(10)]),
            {"include_base_data": False},
            "at least 2 categories",
        ),
        (
            csv_bytes([(f"teh {i}", "Teh") for i in range(10)] + [("kopi 1", "Kopi")]),
            {"include_base_data": False},
            "too few rows for 'Kopi' (1)",
        ),
        (csv_bytes([("teh", "Teh")]), {"params": {"clf__nonsense": [1]}}, "clf__nonsense"),
        (csv_bytes([("teh", "Teh")]), {"params": {"clf__max_iter": 500}}, "clf__max_iter"),
        (
            csv_bytes([("teh", "Teh")]),
            {"algorithm": "logistic_regression", "params": {"clf__C": list(range(1, 62))}},
            "at most 60",
        ),
        (csv_bytes([("teh", "Teh")]), {"algorithm": "naive_guess"}, "algorithm"),
        (csv_bytes([("teh", "Teh")]), {"test_size": 0.9}, "test_size"),
        (csv_bytes([("teh", "Teh")]), {"activte": False}, "activte"),
    ],
)
def test_bad_training_requests_get_422_naming_the_problem(
    api: Api, content: bytes, body: dict[str, Any], needle: str
) -> None:
    api.write_data("new.csv", content)
    response = api.post("/training/", json={"new_data_path": "new.csv", **body})
    assert response.status_code == 422, response.text
    assert needle in response.text
    assert api.get("/training/").json()["jobs"] == []


def test_uploads_above_the_limit_get_413(api: Api) -> None:
    big = csv_bytes([(f"susu ultra {i} " + "x" * 60, "Susu") for i in range(1200)])
    assert len(big) > api.settings.max_upload_bytes
    response = api.post("/datasets/", files={"file": ("big.csv", big, "text/csv")})
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


def test_streamed_bodies_above_the_limit_get_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"product_names": ['
        for _ in range(50_000):
            yield b'"susu ultra coklat 250ml",'
        yield b'"x"]}'

    # A generator body is sent chunked, without Content-Length.
    response = api.client.post(
        "/predict/batch", content=chunks(), headers={**api.auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


def test_upload_validation_errors_are_422(api: Api) -> None:
    for content, needle in [
        (b"\xff\xfe\x00bad", "not UTF-8"),
        (csv_bytes([("a", "b")], header=("x", "y")), "missing product name column"),
    ]:
        response = api.post("/datasets/", files={"file": ("bad.csv", content, "text/csv")})
        assert response.status_code == 422
        assert needle in response.json()["detail"]
    assert api.post("/datasets/").status_code == 422
    unknown = api.get("/training/does-not-exist")
    assert unknown.status_code == 404
    assert api.get("/models/v9.9.9").status_code == 404
    assert api.post("/models/v9.9.9/activate").status_code == 404


class _LauncherThatCannotStart:
    """A launcher whose process start fails, as on a machine out of pids or memory."""

    def launch(self, job_id: str) -> None:
        raise OSError(11, "Resource temporarily unavailable")


def test_a_job_whose_process_cannot_start_fails_at_once_and_frees_the_slot(api: Api) -> None:
    app: FastAPI = api.client.app  # type: ignore[assignment]
    app.dependency_overrides[get_launcher] = _LauncherThatCannotStart
    try:
        refused = api.post("/training/", json={"activate": False})
    finally:
        app.dependency_overrides.clear()
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] == "5"
    assert "could not be started" in refused.json()["detail"]
    # Nothing was left queued: the failed job is recorded and the slot is free again.
    [job] = api.get("/training/").json()["jobs"]
    assert job["status"] == "failed"
    assert "Resource temporarily unavailable" in job["error"]
    assert api.wait(api.train(activate=False)["job_id"])["status"] == "succeeded"
