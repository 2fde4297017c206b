"""Issue 10 regressions for training jobs, each performed as the attack was: through HTTP.

Parameters outside the allow-list, a job that never ends, cancelling, categories
too small to train on, a retrain worse than the active model, and the secrets a
job process could expose.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from app.core.config import Settings
from app.db.models import TrainingJob
from app.ml.algorithms import TUNABLE_PARAMS
from app.ml.training import TrainedModel
from app.services.job_launcher import job_directory, write_settings_file
from app.services.job_process import ABANDONED_EXIT_STATUS
from app.services.training_jobs import TrainingJobService, mark_failed
from app.services.training_plan import TrainingPlan
from tests.polling import poll_json
from tests.support import (
    REPO_ROOT,
    SHIPPED_CSV,
    TEST_SECRET_KEY,
    TINY_CSV,
    Api,
    InProcess,
    Registry,
    alive,
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

# A grid search over the shipped data: long enough to be caught running.
BIG_JOB: dict[str, Any] = {
    "new_data_path": "big.csv",
    "algorithm": "logistic_regression",
    "params": {"clf__C": [1.0, 10.0, 30.0], "features__char__ngram_range": [[2, 5], [1, 6]]},
    "activate": False,
}


def job_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings whose model refresh is quick enough to see a new version served."""
    return make_settings(tmp_path, model_refresh_seconds=0.2, **overrides)


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    """For conftest's `api`."""
    return job_settings(tmp_path)


def job_row(api: Api, job_id: str) -> TrainingJob:
    with api.direct.runtime.session() as session:
        return TrainingJobService(session, api.settings).get(job_id)


def wait_for_pid(api: Api, job_id: str) -> int:
    """The pid of a launched job's process (recorded right after it starts)."""
    deadline = time.monotonic() + 60
    while (pid := job_row(api, job_id).pid) is None:
        assert time.monotonic() < deadline, "the job's pid was never recorded"
        time.sleep(0.05)
    return pid


def wait_until_gone(pid: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still runs after {timeout} s"
        time.sleep(0.1)


def start_big_job(api: Api) -> dict[str, Any]:
    api.write_data("big.csv", SHIPPED_CSV.read_bytes())
    return api.train(**BIG_JOB)


def models(api: Api) -> list[str]:
    return [m["version"] for m in api.get("/models/").json()["models"]]


# --- 1. the parameter allow-list ---------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "named"),
    [
        # Made the vectorisers open the "names" as files: server files in the vocabulary.
        ({"features__word__input": "filename", "features__char__input": "filename"}, "input"),
        # Made the pipeline load joblib pickles from a caller-chosen directory.
        ({"memory": "/tmp/planted"}, "memory"),
        # Kept the single training slot busy for ever.
        ({"clf__max_iter": 1_000_000_000, "clf__tol": None}, "clf__max_iter"),
        ({"features__word__preprocessor": None}, "features__word__preprocessor"),
        ({"features__char__analyzer": "word"}, "features__char__analyzer"),
        ({"clf__C": True}, "clf__C"),
        ({"clf__C": None}, "clf__C"),
        ({"clf__C": 1e12}, "clf__C"),
        ({"clf__C": "1.0"}, "clf__C"),
        ({"clf__C": [1.0, True]}, "clf__C"),
        ({"clf__class_weight": {"Susu": 1000}}, "clf__class_weight"),
        ({"features__word__ngram_range": [1, 50]}, "features__word__ngram_range"),
        ({"features__word__ngram_range": [[1, 1], [3, 1]]}, "features__word__ngram_range"),
        ({"features__word__ngram_range": [True, 2]}, "features__word__ngram_range"),
        ({"features__char__ngram_range": [1, 2, 3]}, "features__char__ngram_range"),
        ({"features__char__min_df": 0}, "features__char__min_df"),
        ({"features__word__sublinear_tf": 1}, "features__word__sublinear_tf"),
        ({"clf__C": []}, "clf__C"),
        # An unbounded or tiny vocabulary cap: memory without limit, or a useless model.
        ({"features__char__max_features": 10**12}, "features__char__max_features"),
        ({"features__word__max_features": 10}, "features__word__max_features"),
        ({"features__word__max_features": True}, "features__word__max_features"),
        ({"features__word__max_features": 5000.0}, "features__word__max_features"),
    ],
)
def test_params_outside_the_allow_list_are_a_422_naming_them(
    api: Api, params: dict[str, Any], named: str
) -> None:
    response = api.post("/training/", json={"algorithm": "logistic_regression", "params": params})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert named in detail
    if named not in TUNABLE_PARAMS["logistic_regression"]:
        # Unknown names come with the list of the allowed ones.
        assert "allowed names" in detail and "features__word__ngram_range" in detail
    else:
        assert "expected" in detail or "empty list" in detail
    assert api.get("/training/").json()["jobs"] == []


def test_allowed_params_and_grids_train(api: Api) -> None:
    job = api.wait(
        api.train(
            algorithm="logistic_regression",
            params={
                "clf__C": [1, 20.0],
                "features__word__ngram_range": [[1, 1], [1, 2]],
                "features__char__ngram_range": [2, 4],
                "features__char__min_df": 1,
                "features__word__sublinear_tf": False,
                "clf__class_weight": None,
            },
            activate=False,
        )["job_id"]
    )
    assert job["status"] == "succeeded", job["error"]
    assert_search_chose_the_best(
        job, {"clf__C": [1, 20.0], "features__word__ngram_range": [[1, 1], [1, 2]]}
    )


def test_the_api_description_lists_the_allowed_params(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    params = schema["components"]["schemas"]["TrainingRequest"]["properties"]["params"]
    assert "features__word__ngram_range" in params["description"]
    assert "clf__estimator__C" in params["description"]


# --- 1. wall-clock limit and cancel ------------------------------------------------------


@pytest.fixture
def impatient_api(tmp_path: Path, tiny_model: TrainedModel) -> Iterator[Api]:
    # Far below what a grid search over the shipped data takes on any machine.
    with open_api(job_settings(tmp_path, training_timeout_seconds=1.0), tiny_model) as api:
        yield api


def test_a_job_past_training_timeout_seconds_is_killed_and_failed(impatient_api: Api) -> None:
    api = impatient_api
    accepted = start_big_job(api)
    pid = wait_for_pid(api, accepted["job_id"])
    job = api.wait(accepted["job_id"])
    assert job["status"] == "failed"
    assert "timed out" in job["error"] and "TRAINING_TIMEOUT_SECONDS" in job["error"]
    wait_until_gone(pid)
    assert job["produced_version"] is None
    assert models(api) == ["v1.0.0"]
    assert api.served_version() == "v1.0.0"


def test_a_job_running_elsewhere_past_its_limit_is_failed_by_the_reaper(
    tmp_path: Path, tiny_model: TrainedModel
) -> None:
    settings = make_settings(tmp_path, training_timeout_seconds=60)
    install_model(settings, tiny_model)
    with serve(settings) as client:
        services = InProcess(client).runtime
        plan = TrainingPlan(None, None, "logistic_regression", {}, {}, True, False, False)
        with services.session() as session:
            job = TrainingJobService(session, services.settings).create(
                plan, source="api", requested_by="elsewhere"
            )
            now = datetime.now(UTC)
            session.execute(
                update(TrainingJob)
                .where(TrainingJob.job_id == job.job_id)
                .values(
                    status="running",
                    host="another-replica",
                    pid=4242,
                    started_at=now - timedelta(hours=2),
                    heartbeat_at=now,
                )
            )
            session.commit()
    # A restarted server (or any worker's next housekeeping tick) applies the limit.
    with serve(settings) as client:
        Registry(client.app).add()  # type: ignore[arg-type]
        status = Api(client, settings).get(f"/training/{job.job_id}").json()
    assert status["status"] == "failed"
    assert "timed out" in status["error"]


def test_delete_cancels_a_running_job_and_kills_its_process(api: Api) -> None:
    accepted = start_big_job(api)
    job_id = accepted["job_id"]
    pid = wait_for_pid(api, job_id)

    response = api.client.delete(f"/training/{job_id}", headers=api.auth)
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["status"] == "failed" and job["error"] == "cancelled by svc"
    wait_until_gone(pid)
    assert api.get(f"/training/{job_id}").json()["error"] == "cancelled by svc"
    assert models(api) == ["v1.0.0"]
    assert api.served_version() == "v1.0.0"

    again = api.client.delete(f"/training/{job_id}", headers=api.auth)
    assert again.status_code == 409 and "already finished" in again.json()["detail"]
    assert api.client.delete("/training/nope", headers=api.auth).status_code == 404
    assert api.client.delete(f"/training/{job_id}").status_code == 401
    predict_only = bearer(token_for(api.client, scope="predict"))
    assert api.client.delete(f"/training/{job_id}", headers=predict_only).status_code == 403


def test_a_job_cancelled_from_another_replica_stops_by_itself(api: Api) -> None:
    accepted = start_big_job(api)
    job_id = accepted["job_id"]
    pid = wait_for_pid(api, job_id)
    poll_json(
        lambda: api.get(f"/training/{job_id}"),
        lambda job: job["status"] == "running",
        timeout=300,
        what="job starting",
    )
    # What DELETE on another replica does: mark the job, with no process to kill here.
    with api.direct.runtime.session() as session:
        assert mark_failed(session, job_id, "cancelled by elsewhere")
    # The heartbeat (app.services.job_heartbeat) notices within a beat; the process exits.
    wait_until_gone(pid, timeout=120)
    job = api.get(f"/training/{job_id}").json()
    assert job["error"] == "cancelled by elsewhere" and job["produced_version"] is None
    assert models(api) == ["v1.0.0"]


def test_a_job_abandoned_from_its_heartbeat_thread_ends_its_workers(tmp_path: Path) -> None:
    # abandon() runs on the heartbeat thread, where no signal disposition may be
    # changed: it must still end every process the job started, then the job itself.
    pid_file = tmp_path / "worker.pid"
    script = f"""
import subprocess, sys, threading
from pathlib import Path
from app.services import job_process
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
Path({str(pid_file)!r}).write_text(str(worker.pid))
threading.Thread(target=job_process.abandon).start()
threading.Event().wait(120)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == ABANDONED_EXIT_STATUS, done.stderr
    wait_until_gone(int(pid_file.read_text()), timeout=60)


def process_group(pgid: int) -> set[int]:
    """Pids of the live processes in group `pgid` (from /proc)."""
    members = set()
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name (field 2) may hold spaces; the fields after it do not.
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.add(int(stat_file.parent.name))
    return members


def test_a_cancelled_job_on_two_cores_leaves_no_worker_process(
    tmp_path: Path, tiny_model: TrainedModel
) -> None:
    settings = job_settings(tmp_path, training_cores=2)
    with open_api(settings, tiny_model) as api:
        api.write_data("big.csv", SHIPPED_CSV.read_bytes())
        job_id = api.train(new_data_path="big.csv", params={"clf__C": [0.5, 1.0]})["job_id"]
        pid = wait_for_pid(api, job_id)
        deadline = time.monotonic() + 300
        # The job's fits run in worker processes of its own process group.
        while len(workers := process_group(pid) - {pid}) < 2:
            assert alive(pid), api.get(f"/training/{job_id}").json()
            assert time.monotonic() < deadline, "the job never started its worker processes"
            time.sleep(0.1)
        # As DELETE on another replica: the job's own heartbeat must notice and clean up.
        with api.direct.runtime.session() as session:
            assert mark_failed(session, job_id, "cancelled by elsewhere")
        wait_until_gone(pid, timeout=120)
        for worker in workers:
            wait_until_gone(worker, timeout=60)
        assert api.get(f"/training/{job_id}").json()["error"] == "cancelled by elsewhere"


# --- 2. auto-activation must not make the service worse ----------------------------------


def test_a_retrain_worse_than_the_active_version_is_kept_inactive(api: Api) -> None:
    # A starved classifier on the same data: the same hold-out shows the drop.
    job = api.wait(api.train(algorithm="logistic_regression", params={"clf__C": 0.001})["job_id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["activated"] is False
    metrics = job["metrics"]
    active_f1 = metrics["active_macro_f1_same_holdout"]
    new_f1 = metrics["new_macro_f1_same_holdout"]
    assert metrics["active_version_compared"] == "v1.0.0"
    assert new_f1 < active_f1 - 0.01
    assert "MAX_F1_DROP" in job["message"]
    assert f"{new_f1:.4f}" in job["message"] and f"{active_f1:.4f}" in job["message"]
    assert api.get("/models/active").json()["version"] == "v1.0.0"
    assert api.served_version() == "v1.0.0"


def test_with_no_active_version_only_min_macro_f1_applies(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, model_refresh_seconds=0.2)
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "tiny.csv").write_bytes(TINY_CSV.read_bytes())
    with serve(settings) as client:
        Registry(client.app).add()  # type: ignore[arg-type]
        api = Api(client, settings)
        try:
            job = api.wait(api.train(new_data_path="tiny.csv")["job_id"])
        finally:
            api.stop_jobs()
    assert job["status"] == "succeeded", job["error"]
    assert job["activated"] is True
    assert "active_macro_f1_same_holdout" not in job["metrics"]


# --- 6. the job process gets no secret through its environment ---------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_job_process_environment_holds_no_secret(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if the operator exported them: the child must still not inherit them.
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("DATABASE_URL", api.settings.database_url)
    accepted = start_big_job(api)
    pid = wait_for_pid(api, accepted["job_id"])
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        pytest.fail("the job process ended before its environment could be read")
    for secret in (TEST_SECRET_KEY, api.settings.database_url):
        assert secret.encode() not in environ
        assert secret.encode() not in cmdline
    assert b"GAROUPA_JOB_SETTINGS=" not in environ


def test_job_files_are_private_and_the_settings_file_is_consumed(api: Api) -> None:
    job = api.wait(api.train(activate=False)["job_id"])
    assert job["status"] == "succeeded", job["error"]
    jobs_dir = api.settings.model_dir / "jobs"
    assert stat.S_IMODE(jobs_dir.stat().st_mode) == 0o700
    log = jobs_dir / f"{job['job_id']}.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert not list(jobs_dir.glob("*.settings.json"))


def test_settings_files_are_created_0600_even_under_a_permissive_umask(
    settings: Settings,
) -> None:
    old = os.umask(0)
    try:
        path = write_settings_file(settings, job_directory(settings.model_dir), "job")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with pytest.raises(FileExistsError):
        write_settings_file(settings, path.parent, "job")


# --- 6. the open slot is checked before the data is read ---------------------------------


def test_a_request_during_an_open_job_gets_409_before_its_data_is_read(api: Api) -> None:
    plan = TrainingPlan(None, None, "logistic_regression", {}, {}, True, False, False)
    with api.direct.runtime.session() as session:
        holder = TrainingJobService(session, api.settings).create(
            plan, source="api", requested_by="holder"
        )
    # Unreadable data would be a 422 if it were parsed first.
    api.write_data("latin1.csv", "café,Susu\n".encode("latin-1"))
    response = api.post("/training/", json={"new_data_path": "latin1.csv"})
    assert response.status_code == 409, response.text
    assert holder.job_id in response.json()["detail"]


# --- 7. a category with too few rows is left out, not fatal ------------------------------


def test_a_one_row_category_is_left_out_with_a_warning(api: Api) -> None:
    api.write_data("one.csv", csv_bytes(shipped_rows("Teh", 1)))
    accepted = api.train(new_data_path="one.csv", activate=False)
    assert any("'Teh'" in w and "left out" in w for w in accepted["warnings"]), accepted
    job = api.wait(accepted["job_id"])
    assert job["status"] == "succeeded", job["error"]
    assert any("'Teh'" in w for w in job["warnings"])
    assert job["data_rows"] == 78
    detail = api.get(f"/models/{job['produced_version']}").json()
    assert "Teh" not in detail["classes"] and len(detail["classes"]) == 6


def test_a_job_is_refused_only_when_fewer_than_two_categories_remain(api: Api) -> None:
    rows = shipped_rows("Teh", 6) + shipped_rows("Kopi", 1)
    api.write_data("two.csv", csv_bytes(rows))
    response = api.post("/training/", json={"new_data_path": "two.csv", "include_base_data": False})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "at least 2 categories" in detail and "too few rows for 'Kopi' (1)" in detail


# --- 7d. pollers honour Retry-After ------------------------------------------------------


def test_the_job_poller_waits_out_rate_limits(tmp_path: Path, tiny_model: TrainedModel) -> None:
    with open_api(job_settings(tmp_path, rate_limit_train="3/second"), tiny_model) as api:
        accepted = api.train(activate=False)
        # Many polls a second: the limit is hit, and each 429 is waited out.
        job = api.wait(accepted["job_id"])
        assert job["status"] == "succeeded", job["error"]


def test_a_poller_fails_clearly_on_an_unexpected_answer(api: Api) -> None:
    with pytest.raises(AssertionError, match="unexpected answer 404"):
        api.wait("no-such-job", timeout=5)


def test_train_py_reports_categories_it_leaves_out(settings: Settings, tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_bytes(TINY_CSV.read_bytes() + b"teh botol sosro 350ml,Teh\n")
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATABASE_URL")},
        "SECRET_KEY": settings.secret_key or "",
        "DATABASE_URL": settings.database_url,
        "MODEL_DIR": str(settings.model_dir),
        "DATA_DIR": str(settings.data_dir),
    }
    result = subprocess.run(
        [sys.executable, "train.py", "--data", str(data)],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "'Teh' left out" in result.stderr
