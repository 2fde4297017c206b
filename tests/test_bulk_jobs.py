"""Bulk scoring jobs through HTTP (POST /predictions/bulk): a process per job, progress,
results in input order, ownership, limits, crashes and expiry, on the real model."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.api.deps import get_bulk_launcher
from app.core.config import Settings
from app.crud import bulk_job as crud
from app.db.base import Base
from app.db.database import open_database
from app.db.models import BulkJob
from app.ml.training import TrainedModel
from app.services.bulk_jobs import BulkJobService, job_folder, mark_failed, result_file
from app.services.datasets import UPLOAD_FOLDER, client_folder
from app.services.runtime import BULK_PURGE_SECONDS, Interval
from app.services.training_jobs import this_host
from tests.polling import poll_json
from tests.support import (
    SHIPPED_CSV,
    TINY_CSV,
    Api,
    Registry,
    alive,
    bearer,
    child_pids,
    make_settings,
    open_api,
    predict_batch,
    readme_bash_block,
    start_server,
    token_for,
)
from tests.test_bulk_scoring import _assert_same_as_batch, _csv, _names, _read_output

# Generous: a job process imports scikit-learn and loads the model before its first row.
JOB_SECONDS = 600.0


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    """For conftest's `api`: small limits to exceed, and a quick maintenance tick."""
    return make_settings(
        tmp_path,
        model_refresh_seconds=0.2,
        max_bulk_upload_bytes=256 * 1024,
        max_bulk_jobs_per_client=1,
        max_bulk_jobs=2,
    )


@pytest.fixture
def bulk(api: Api) -> Iterator[Api]:
    """`api`, and on leaving every open bulk job cancelled and its process awaited."""
    try:
        yield api
    finally:
        _stop_bulk_jobs(api)


def _stop_bulk_jobs(api: Api, timeout: float = 60) -> None:
    runtime = api.direct.runtime
    with runtime.session() as session:
        jobs = BulkJobService(session, api.settings)
        open_jobs = list(crud.open_jobs(session))
        for job in open_jobs:
            jobs.cancel(job.client_id, job.job_id)
    deadline = time.monotonic() + timeout
    for job in open_jobs:
        while job.pid is not None and job.host == this_host() and alive(job.pid):
            assert time.monotonic() < deadline, f"bulk process {job.pid} outlived its cancel"
            time.sleep(0.1)


def _start(api: Api, headers: dict[str, str] | None = None, **kwargs: Any) -> dict[str, Any]:
    response = api.client.post("/predictions/bulk", headers=headers or api.auth, **kwargs)
    assert response.status_code == 202, response.text
    body = dict(response.json())
    assert response.headers["Location"] == body["status_url"]
    assert body["status_url"] == f"/predictions/bulk/{body['job_id']}"
    return body


def _upload(data: bytes, name: str = "names.csv") -> dict[str, Any]:
    return {"files": {"file": (name, data, "text/csv")}}


def _wait(api: Api, job_id: str, timeout: float = JOB_SECONDS) -> dict[str, Any]:
    return poll_json(
        lambda: api.get(f"/predictions/bulk/{job_id}"),
        lambda job: job["status"] in ("succeeded", "failed"),
        timeout=timeout,
        what=f"bulk job {job_id}",
    )


def _job_row(api: Api, job_id: str) -> BulkJob:
    with api.direct.runtime.session() as session:
        job = crud.get_job(session, job_id)
    assert job is not None
    return job


def _catalog(rows: int) -> list[str]:
    """`rows` names: the shipped ones, then the same again with a pack size added."""
    names = _names(SHIPPED_CSV, 100_000)
    return [
        name if i < len(names) else f"{name} {i // len(names) * 50}g"
        for i, name in ((i, names[i % len(names)]) for i in range(rows))
    ]


def _big_csv(rows: int = 400_000) -> bytes:
    """A file that takes the job seconds at least, however fast the machine."""
    names = _names(TINY_CSV, 100)
    return _csv([["product_name"], *([names[i % len(names)]] for i in range(rows))])


class _NoProcess:
    """A launcher that starts nothing: the job stays queued (for the limits)."""

    def launch(self, job_id: str) -> None:
        pass


# --- the result equals /predict/batch ------------------------------------------------------------


def test_a_50000_row_job_equals_predict_batch_in_order(
    tmp_path: Path, shipped_model: TrainedModel
) -> None:
    settings = make_settings(tmp_path, model_refresh_seconds=0.2)
    names = _catalog(50_000)
    with open_api(settings, shipped_model) as api:
        try:
            api.write_data("catalog.csv", _csv([["product_name"], *([n] for n in names)]))
            accepted = _start(api, data={"data_path": "data/catalog.csv"})
            assert accepted["model_version"] == "v1.0.0"
            job = _wait(api, accepted["job_id"])
            assert job["status"] == "succeeded", job["error"]
            assert (job["rows"], job["bad_rows"], job["percent"]) == (50_000, 0, 100.0)
            assert job["rows_per_second"] > 0 and job["eta_seconds"] == 0
            assert job["result_url"] == f"{accepted['status_url']}/result.csv"
            response = api.get(job["result_url"])
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/csv")
            assert response.headers["cache-control"] == "no-store"
            rows = _read_output(response.content)
            _assert_same_as_batch(rows, predict_batch(api, names))
        finally:
            _stop_bulk_jobs(api)


def test_an_upload_with_a_header_elsewhere_scores_that_column(bulk: Api) -> None:
    names = _names(TINY_CSV, 30)
    data = _csv([["sku", "product_name"], *([f"A{i}", n] for i, n in enumerate(names))])
    job = _wait(bulk, _start(bulk, **_upload(data))["job_id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["source"] == "upload" and job["data_path"] is None
    rows = _read_output(bulk.get(job["result_url"]).content)
    _assert_same_as_batch(rows, predict_batch(bulk, names))
    # The uploaded copy goes with the job; the result stays, for its owner only.
    folder = job_folder(bulk.settings.model_dir, job["job_id"])
    assert sorted(p.name for p in folder.iterdir()) == ["result.csv"]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "result.csv").stat().st_mode) == 0o600


# --- bad input -----------------------------------------------------------------------------------


def test_bad_rows_are_reported_per_row_and_counted_never_failing_the_job(bulk: Api) -> None:
    lines = [
        b"product_name",
        b"susu ultra coklat 250ml",
        b'""',
        b"x" * 301,
        b"kopi \xff\xfe kapal api",
        b"indomie goreng 85g",
    ]
    job = _wait(bulk, _start(bulk, **_upload(b"\n".join(lines) + b"\n"))["job_id"])
    assert job["status"] == "succeeded", job["error"]
    assert (job["rows"], job["bad_rows"]) == (5, 3)
    rows = _read_output(bulk.get(job["result_url"]).content)
    assert [row["row"] for row in rows] == ["1", "2", "3", "4", "5"]
    assert [bool(row["error"]) for row in rows] == [False, True, True, True, False]
    assert rows[1]["error"] == "empty name"
    assert "300" in rows[2]["error"]
    assert rows[3]["error"] == "name is not valid UTF-8"
    assert rows[3]["predicted_category"] == "" and rows[0]["predicted_category"]


def test_more_rows_than_max_bulk_rows_fail_the_job_naming_the_limit(
    tmp_path: Path, tiny_model: TrainedModel
) -> None:
    settings = make_settings(tmp_path, max_bulk_rows=10)
    with open_api(settings, tiny_model) as api:
        try:
            data = _csv([["product_name"], *([f"teh botol {i}"] for i in range(11))])
            job = _wait(api, _start(api, **_upload(data))["job_id"])
            assert job["status"] == "failed"
            assert "more than 10 data rows" in job["error"]
            assert job["result_url"] is None
            assert api.get(f"/predictions/bulk/{job['job_id']}/result.csv").status_code == 409
            assert not result_file(settings.model_dir, job["job_id"]).exists()
        finally:
            _stop_bulk_jobs(api)


def test_an_upload_over_max_bulk_upload_bytes_is_413_and_leaves_nothing(bulk: Api) -> None:
    data = b"product_name\n" + b"susu ultra coklat 250ml\n" * 15_000
    assert len(data) > 256 * 1024 + 64 * 1024
    response = bulk.post("/predictions/bulk", **_upload(data))
    assert response.status_code == 413, response.text
    # Above the file limit but within the multipart allowance: refused by the route.
    data = b"product_name\n" + b"x" * (256 * 1024)
    response = bulk.post("/predictions/bulk", **_upload(data))
    assert response.status_code == 413, response.text
    assert "detail" in response.json()
    root = bulk.settings.model_dir / "bulk"
    assert not root.exists() or list(root.iterdir()) == []
    with bulk.direct.runtime.session() as session:
        assert crud.count_open(session) == 0


@pytest.mark.parametrize(
    ("data_path", "status"),
    [
        ("../outside.csv", 400),
        ("data/../../outside.csv", 400),
        ("/etc/passwd", 400),
        ("..\\outside.csv", 400),
        ("link.csv", 400),
        ("missing.csv", 404),
    ],
)
def test_a_data_path_outside_the_data_directory_is_refused(
    bulk: Api, tmp_path: Path, data_path: str, status: int
) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text("product_name\nsecret thing\n")
    (bulk.settings.data_dir / "link.csv").symlink_to(outside)
    response = bulk.post("/predictions/bulk", data={"data_path": data_path})
    assert response.status_code == status, response.text
    with bulk.direct.runtime.session() as session:
        assert crud.count_open(session) == 0


def test_another_clients_upload_folder_does_not_exist_for_this_one(bulk: Api) -> None:
    theirs = f"{UPLOAD_FOLDER}/{client_folder('other')}/20261203-101500-0011223344556677.csv"
    bulk.write_data(theirs, b"product_name\nsecret launch product\n")
    response = bulk.post("/predictions/bulk", data={"data_path": theirs})
    assert response.status_code == 404, response.text
    mine = f"{UPLOAD_FOLDER}/{client_folder('svc')}/20261203-101500-8899aabbccddeeff.csv"
    bulk.write_data(mine, b"product_name\nteh botol sosro\n")
    job = _wait(bulk, _start(bulk, data={"data_path": mine})["job_id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["data_path"] == mine


@pytest.mark.parametrize(
    "form",
    [
        {"data": {}},
        {"data": {"data_path": "products.csv"}, "files": {"file": ("a.csv", b"x\n", "text/csv")}},
        {"data": {"data_path": "products.csv", "model_version": "../v1.0.0"}},
        {"data": {"data_path": "products.csv", "model_version": "v1.0.0; drop"}},
    ],
)
def test_neither_or_both_inputs_or_a_malformed_version_is_422(
    bulk: Api, form: dict[str, Any]
) -> None:
    bulk.write_data("products.csv", b"product_name\nteh botol\n")
    response = bulk.post("/predictions/bulk", **form)
    assert response.status_code == 422, response.text


def test_an_unknown_model_version_is_404(bulk: Api) -> None:
    bulk.write_data("products.csv", b"product_name\nteh botol\n")
    response = bulk.post(
        "/predictions/bulk", data={"data_path": "products.csv", "model_version": "v9.9.9"}
    )
    assert response.status_code == 404, response.text
    assert "v9.9.9" in response.json()["detail"]


# --- ownership -----------------------------------------------------------------------------------


def test_another_client_cannot_see_read_or_cancel_a_job(bulk: Api) -> None:
    registry = Registry(bulk.client.app)  # type: ignore[arg-type]
    registry.add("nosy", scopes="predict")
    registry.add("boss", scopes="admin predict train")
    job = _wait(bulk, _start(bulk, **_upload(b"product_name\nteh botol\n"))["job_id"])
    assert job["status"] == "succeeded", job["error"]
    url = job["status_url"]
    for other in ("nosy", "boss"):
        headers = bearer(token_for(bulk.client, other))
        for answer in (
            bulk.client.get(url, headers=headers),
            bulk.client.get(f"{url}/result.csv", headers=headers),
            bulk.client.delete(url, headers=headers),
        ):
            # Not 403: whether the id exists is not theirs to learn.
            assert answer.status_code == 404, answer.text
            assert "teh" not in answer.text
    assert bulk.get(f"{url}/result.csv").status_code == 200
    unknown = "00000000-0000-4000-8000-000000000000"
    assert bulk.get(f"/predictions/bulk/{unknown}").status_code == 404
    assert bulk.get(f"/predictions/bulk/{'x' * 5000}").status_code == 404


def test_a_token_without_predict_is_refused(bulk: Api) -> None:
    Registry(bulk.client.app).add("trainer", scopes="train")  # type: ignore[arg-type]
    headers = bearer(token_for(bulk.client, "trainer"))
    response = bulk.client.post(
        "/predictions/bulk", headers=headers, **_upload(b"product_name\nteh\n")
    )
    assert response.status_code == 403
    assert (
        bulk.client.post("/predictions/bulk", **_upload(b"product_name\nteh\n")).status_code == 401
    )


# --- limits and cancellation ---------------------------------------------------------------------


def test_jobs_per_client_and_per_service_are_bounded_with_409(bulk: Api) -> None:
    bulk.client.app.dependency_overrides[get_bulk_launcher] = _NoProcess  # type: ignore[attr-defined]
    registry = Registry(bulk.client.app)  # type: ignore[arg-type]
    registry.add("second", scopes="predict")
    registry.add("third", scopes="predict")
    bulk.write_data("products.csv", b"product_name\nteh botol\n")
    form: dict[str, Any] = {"data": {"data_path": "products.csv"}}
    first = _start(bulk, **form)
    assert first["status"] == "queued"
    refused = bulk.post("/predictions/bulk", **form)
    assert refused.status_code == 409
    assert "MAX_BULK_JOBS_PER_CLIENT" in refused.json()["detail"]
    _start(bulk, headers=bearer(token_for(bulk.client, "second")), **form)
    refused = bulk.client.post(
        "/predictions/bulk", headers=bearer(token_for(bulk.client, "third")), **form
    )
    assert refused.status_code == 409
    assert "MAX_BULK_JOBS" in refused.json()["detail"]
    # A cancelled job frees its place at once.
    cancelled = bulk.client.delete(first["status_url"], headers=bulk.auth)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "failed"
    assert cancelled.json()["error"] == "cancelled by svc"
    assert bulk.client.delete(first["status_url"], headers=bulk.auth).status_code == 409
    assert bulk.get(f"{first['status_url']}/result.csv").status_code == 409
    _start(bulk, **form)


def test_a_job_killed_mid_run_is_failed_and_its_partial_result_never_served(
    bulk: Api,
) -> None:
    bulk.write_data("big.csv", _big_csv())
    accepted = _start(bulk, data={"data_path": "big.csv"})
    job_id = accepted["job_id"]
    running = poll_json(
        lambda: bulk.get(accepted["status_url"]),
        lambda job: job["status"] != "queued" and (job["rows"] > 0 or job["status"] != "running"),
        timeout=JOB_SECONDS,
        what="the first rows of the job",
    )
    assert running["status"] == "running", running
    assert 0 < running["percent"] < 100
    row = _job_row(bulk, job_id)
    assert row.pid is not None and row.host == this_host()
    os.killpg(row.pid, signal.SIGKILL)
    job = _wait(bulk, job_id)
    assert job["status"] == "failed"
    assert "killed by signal 9" in job["error"] or "ended without a result" in job["error"]
    assert job["result_url"] is None
    assert bulk.get(f"{accepted['status_url']}/result.csv").status_code == 409
    assert not result_file(bulk.settings.model_dir, job_id).exists()
    # The maintenance pass (each worker's, once a minute; its schedule is tested on its
    # own below) removes what the dead process left: its temporary output.
    with bulk.direct.runtime.session() as session:
        BulkJobService(session, bulk.settings).purge_expired()
    assert not job_folder(bulk.settings.model_dir, job_id).exists()


def test_cancelling_a_running_job_stops_its_process(bulk: Api) -> None:
    bulk.write_data("big.csv", _big_csv())
    accepted = _start(bulk, data={"data_path": "big.csv"})
    poll_json(
        lambda: bulk.get(accepted["status_url"]),
        lambda job: job["status"] != "queued",
        timeout=JOB_SECONDS,
        what="the job to start",
    )
    pid = _job_row(bulk, accepted["job_id"]).pid
    cancelled = bulk.client.delete(accepted["status_url"], headers=bulk.auth)
    if cancelled.status_code == 409:
        pytest.skip("the job finished before it could be cancelled")
    assert cancelled.status_code == 200, cancelled.text
    assert pid is not None
    deadline = time.monotonic() + 60
    while alive(pid):
        assert time.monotonic() < deadline, "the cancelled job's process still runs"
        time.sleep(0.1)
    assert bulk.get(f"{accepted['status_url']}/result.csv").status_code == 409


# --- several cores -------------------------------------------------------------------------------


def test_a_job_on_two_cores_equals_predict_batch_in_order(
    tmp_path: Path, shipped_model: TrainedModel
) -> None:
    settings = make_settings(tmp_path, model_refresh_seconds=0.2, bulk_cores=2)
    # Three chunks and a part: both workers score some.
    names = _catalog(14_000)
    with open_api(settings, shipped_model) as api:
        try:
            data = _csv([["product_name"], *([n] for n in names)])
            job = _wait(api, _start(api, **_upload(data))["job_id"])
            assert job["status"] == "succeeded", job["error"]
            assert (job["rows"], job["bad_rows"]) == (14_000, 0)
            rows = _read_output(api.get(job["result_url"]).content)
            _assert_same_as_batch(rows, predict_batch(api, names))
        finally:
            _stop_bulk_jobs(api)


def _job_and_workers(api: Api, job_id: str, cores: int) -> tuple[int, set[int]] | None:
    """The running job's process and its `cores` workers, or None if it ended first."""
    deadline = time.monotonic() + JOB_SECONDS
    while time.monotonic() < deadline:
        row = _job_row(api, job_id)
        if row.status not in ("queued", "running"):
            return None
        if row.pid is not None and len(workers := child_pids(row.pid)) >= cores:
            assert len(workers) == cores, workers
            return row.pid, workers
        time.sleep(0.05)
    raise AssertionError(f"bulk job {job_id} did not start {cores} workers")


def _assert_all_end(pids: set[int], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while running := {pid for pid in pids if alive(pid)}:
        assert time.monotonic() < deadline, f"processes {sorted(running)} outlived their job"
        time.sleep(0.1)


@pytest.fixture
def two_cores(tmp_path: Path, tiny_model: TrainedModel) -> Iterator[Api]:
    """The app with BULK_CORES=2 and a file that takes a job seconds at least."""
    with open_api(make_settings(tmp_path, bulk_cores=2), tiny_model) as api:
        try:
            api.write_data("big.csv", _big_csv())
            yield api
        finally:
            _stop_bulk_jobs(api)


def test_cancelling_a_job_on_two_cores_ends_its_workers(two_cores: Api) -> None:
    accepted = _start(two_cores, data={"data_path": "big.csv"})
    started = _job_and_workers(two_cores, accepted["job_id"], 2)
    if started is None:
        pytest.skip("the job finished before its workers were seen")
    pid, workers = started
    cancelled = two_cores.client.delete(accepted["status_url"], headers=two_cores.auth)
    if cancelled.status_code == 409:
        pytest.skip("the job finished before it could be cancelled")
    assert cancelled.status_code == 200, cancelled.text
    _assert_all_end({pid, *workers})
    assert two_cores.get(f"{accepted['status_url']}/result.csv").status_code == 409


def test_a_job_closed_elsewhere_abandons_its_run_and_its_workers_end(two_cores: Api) -> None:
    accepted = _start(two_cores, data={"data_path": "big.csv"})
    started = _job_and_workers(two_cores, accepted["job_id"], 2)
    if started is None:
        pytest.skip("the job finished before its workers were seen")
    pid, workers = started
    # As a cancel on another replica does: the row is closed and nothing is killed
    # here. The job notices at its next progress write or heartbeat and stops.
    with two_cores.direct.runtime.session() as session:
        if not mark_failed(session, accepted["job_id"], "cancelled elsewhere"):
            pytest.skip("the job finished before it could be closed")
    _assert_all_end({pid, *workers}, timeout=120)
    assert not result_file(two_cores.settings.model_dir, accepted["job_id"]).exists()


def test_a_job_process_killed_alone_takes_its_workers_with_it(two_cores: Api) -> None:
    accepted = _start(two_cores, data={"data_path": "big.csv"})
    started = _job_and_workers(two_cores, accepted["job_id"], 2)
    if started is None:
        pytest.skip("the job finished before its workers were seen")
    pid, workers = started
    # Not the group: as the OOM killer or an abandoning heartbeat (os._exit) ends it.
    os.kill(pid, signal.SIGKILL)
    _assert_all_end({pid, *workers})
    job = _wait(two_cores, accepted["job_id"])
    assert job["status"] == "failed"


# --- expiry --------------------------------------------------------------------------------------


def test_results_expire_after_bulk_result_retention_days(bulk: Api) -> None:
    job = _wait(bulk, _start(bulk, **_upload(b"product_name\nteh botol\n"))["job_id"])
    assert job["status"] == "succeeded", job["error"]
    finished = datetime.fromisoformat(job["finished_at"])
    assert datetime.fromisoformat(job["expires_at"]) == finished + timedelta(days=7)
    folder = job_folder(bulk.settings.model_dir, job["job_id"])

    def purge_at(moment: datetime) -> list[str]:
        with bulk.direct.runtime.session() as session:
            return BulkJobService(session, bulk.settings, clock=lambda: moment).purge_expired()

    assert purge_at(finished + timedelta(days=6, hours=23)) == []
    assert bulk.get(job["result_url"]).status_code == 200
    assert purge_at(finished + timedelta(days=7, seconds=1)) == [job["job_id"]]
    assert not folder.exists()
    assert bulk.get(job["status_url"]).status_code == 404
    assert bulk.get(job["result_url"]).status_code == 404


def test_expired_jobs_are_looked_for_on_the_first_tick_then_once_a_period() -> None:
    purge = Interval(BULK_PURGE_SECONDS)
    assert purge.due()
    assert not purge.due()
    every_tick = Interval(0.0)
    assert every_tick.due() and every_tick.due()


def test_a_job_whose_process_never_reports_is_failed_by_the_reaper(bulk: Api) -> None:
    bulk.client.app.dependency_overrides[get_bulk_launcher] = _NoProcess  # type: ignore[attr-defined]
    bulk.write_data("products.csv", b"product_name\nteh botol\n")
    job_id = _start(bulk, data={"data_path": "products.csv"})["job_id"]
    later = datetime.now(UTC) + timedelta(seconds=60)
    with bulk.direct.runtime.session() as session:
        assert BulkJobService(session, bulk.settings, clock=lambda: later).reap() == [job_id]
    job = bulk.get(f"/predictions/bulk/{job_id}").json()
    assert job["status"] == "failed" and "stopped reporting" in job["error"]


# --- schema --------------------------------------------------------------------------------------


def test_the_migration_creates_the_bulk_jobs_table_as_the_model_declares(
    settings: Settings,
) -> None:
    database = open_database(settings.database_url, migrate=True)
    try:
        with database.engine.connect() as connection:
            context = MigrationContext.configure(connection)
            differences = [
                d for d in compare_metadata(context, Base.metadata) if "bulk_jobs" in repr(d)
            ]
    finally:
        database.dispose()
    assert differences == []


# --- the README ----------------------------------------------------------------------------------


@pytest.mark.e2e
def test_readme_bulk_examples_run_as_written(database_backend: str, tmp_path: Path) -> None:
    process, server = start_server(tmp_path, train_first=True)
    try:
        added = server.cli("add", "My Test App", "testclient01", "supersecret123")
        assert added.returncode == 0, added.stderr
        script = (
            (readme_bash_block("curl-examples") + readme_bash_block("bulk-examples"))
            .replace("http://127.0.0.1:8000", server.url)
            # The README's `python` is the one the service is installed in.
            .replace("python -m app.cli", f"{sys.executable} -m app.cli")
        )
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            env=server.env,
        )
        assert result.returncode == 0, result.stderr
        assert '"status":"succeeded"' in result.stdout.replace(" ", "")
        served = _read_output((tmp_path / "scored.csv").read_bytes())
        offline = _read_output((tmp_path / "scored-offline.csv").read_bytes())
        assert served == offline
        assert [row["product_name"] for row in served] == [
            "susu ultra coklat 250ml",
            "indomie goreng 85g",
            "",
            "teh botol sosro 450ml",
        ]
        assert served[0]["predicted_category"] == "Susu"
        assert served[2]["error"] == "empty name"
    finally:
        process.terminate()
        process.wait(timeout=15)
