"""A running app with a model and a client, and the training data the tests send it."""

from __future__ import annotations

import csv
import io
import itertools
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.core.config import Settings
from app.core.errors import Conflict
from app.db.database import open_database
from app.main import create_app
from app.ml.dataset import read_csv
from app.ml.training import TrainedModel
from app.services.models import ModelRegistry
from app.services.runtime import Runtime
from app.services.training_jobs import TrainingJobService, this_host
from tests.polling import poll_json
from tests.support.auth import Registry, bearer, token_for
from tests.support.databases import install_model
from tests.support.paths import SHIPPED_CSV, TINY_CSV

SUSU = {"product_name": "susu ultra coklat 250ml"}


@cache
def tiny_names() -> frozenset[str]:
    """The product names of the tiny fixture (read once, when first asked)."""
    return frozenset(read_csv(TINY_CSV).texts)


def shipped_rows(category: str, n: int, skip: int = 0) -> list[tuple[str, str]]:
    """`n` rows of `category` from the shipped data that the tiny fixture does not have."""
    with SHIPPED_CSV.open(encoding="utf-8", newline="") as handle:
        rows = [
            (r["product_name"], r["category"])
            for r in csv.DictReader(handle)
            if r["category"] == category and r["product_name"] not in tiny_names()
        ]
    return rows[skip : skip + n]


def csv_bytes(
    rows: list[tuple[str, str]], header: tuple[str, str] = ("product_name", "category")
) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def assert_search_chose_the_best(job: dict[str, Any], grid: dict[str, list[Any]]) -> None:
    """The job's grid search tried exactly `grid` and chose a candidate of highest mean score.

    Each candidate's rank is 1 + the number of candidates with a higher mean (ties share
    a rank), and `best_params` is a rank-1 candidate: what GridSearchCV must choose.
    """
    results = job["cv_results"]
    tried = sorted(sorted(r["params"].items()) for r in results)
    expected = sorted(
        sorted(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())
    )
    assert tried == expected, f"candidates tried: {tried}"
    means = [r["mean_macro_f1"] for r in results]
    for result in results:
        higher = sum(mean > result["mean_macro_f1"] for mean in means)
        assert result["rank"] == 1 + higher, results
    best = [r["params"] for r in results if r["mean_macro_f1"] == max(means)]
    assert job["best_params"] in best, (job["best_params"], results)


def serve(settings: Settings, **kwargs: Any) -> TestClient:
    """A TestClient for an app on `settings`, its database migrated first (as `make run` does)."""
    open_database(settings.database_url, migrate=True).dispose()
    return TestClient(create_app(settings), **kwargs)


class InProcess:
    """The services of a running app, called directly: for states HTTP cannot set up."""

    def __init__(self, client: TestClient) -> None:
        self.runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]

    @contextmanager
    def jobs(self) -> Iterator[TrainingJobService]:
        with self.runtime.session() as session:
            yield TrainingJobService(session, self.runtime.settings, self.runtime.launcher)

    @contextmanager
    def models(self) -> Iterator[ModelRegistry]:
        with self.runtime.session() as session:
            yield ModelRegistry(session, self.runtime.settings.model_dir, self.runtime.predictions)


class Api:
    """A running app with a model active, its settings, and a `predict train` token.

    `post` and `get` send that token; `client` is the bare TestClient for any other call.
    """

    def __init__(self, client: TestClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.direct = InProcess(client)
        self.auth = bearer(token_for(client))

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.client.post(path, headers=self.auth, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.auth, **kwargs)

    def write_data(self, name: str, data: bytes) -> None:
        path = self.settings.data_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def train(self, **body: Any) -> dict[str, Any]:
        response = self.post("/training/", json=body)
        assert response.status_code == 202, response.text
        return dict(response.json())

    def wait(self, job_id: str, timeout: float = 600) -> dict[str, Any]:
        """Poll the job until it ends (honouring 429 Retry-After), at most `timeout` s."""
        return poll_json(
            lambda: self.get(f"/training/{job_id}"),
            lambda job: job["status"] in ("succeeded", "failed"),
            timeout=timeout,
            what=f"training job {job_id}",
        )

    def stop_jobs(self, timeout: float = 60) -> None:
        """Cancel any open job and wait for its process to end (before the database goes)."""
        with self.direct.jobs() as jobs:
            open_jobs = [j for j in jobs.recent(5) if j.status in ("queued", "running")]
            for job in open_jobs:
                try:
                    jobs.cancel(job.job_id, by="test teardown")
                except Conflict:
                    pass
        deadline = time.monotonic() + timeout
        for job in open_jobs:
            while job.pid is not None and job.host == this_host() and alive(job.pid):
                assert time.monotonic() < deadline, f"job process {job.pid} outlived its cancel"
                time.sleep(0.1)

    def served_version(self) -> str:
        response = self.post("/predict/", json=SUSU)
        assert response.status_code == 200, response.text
        return str(response.json()["model_version"])

    def serves_within(self, version: str, seconds: float = 5) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.served_version() == version:
                return True
            time.sleep(0.05)
        return False


def predict_batch(api: Api, names: list[str]) -> list[dict[str, Any]]:
    """What POST /predict/batch answers for each of `names`, in order (1,000 per request)."""
    items: list[dict[str, Any]] = []
    for start in range(0, len(names), 1000):
        response = api.post("/predict/batch", json={"product_names": names[start : start + 1000]})
        assert response.status_code == 200, response.text
        items += response.json()["predictions"]
    return items


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (killed, not yet reaped by its watcher) no longer runs.
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


@contextmanager
def open_api(
    settings: Settings, trained: TrainedModel, *, raise_server_exceptions: bool = True
) -> Iterator[Api]:
    """`trained` installed and active, the app running on `settings`, client `svc` registered.

    On leaving, any open training job is cancelled and its process awaited, so that
    no job outlives the test's database.
    """
    install_model(settings, trained)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with serve(settings, raise_server_exceptions=raise_server_exceptions) as client:
        Registry(client.app).add()  # type: ignore[arg-type]
        api = Api(client, settings)
        try:
            yield api
        finally:
            api.stop_jobs()
