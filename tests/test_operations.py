"""Health, readiness, Prometheus metrics across workers, structured request logs."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app.api.deps import get_session
from app.core.metrics import CONTENT_TYPE_LATEST
from tests.support import (
    TEST_SECRET_KEY,
    Api,
    bearer,
    start_server,
    token_for,
)

SUSU = {"product_name": "susu ultra coklat 250ml"}


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample of metric `name` (counters carry a `_total` suffix in the sample)."""
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                values[tuple(sorted(sample.labels.items()))] = sample.value
    return values


def predict_count(text: str) -> float:
    key = (("method", "POST"), ("route", "/predict/"), ("status", "200"))
    return samples(text, "garoupa_http_requests_total").get(key, 0.0)


def test_health_answers_without_auth(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_is_503_with_reasons_until_a_model_scores(client: TestClient) -> None:
    response = client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"] == {"database": "ok", "model": "none"}
    assert any("python train.py" in reason for reason in body["reasons"])


def test_ready_is_200_when_the_database_answers_and_the_model_scores(api: Api) -> None:
    response = api.client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "model": "v1.0.0"},
        "reasons": [],
    }


def test_ready_reports_an_unreachable_database(api: Api) -> None:
    # A real engine aimed at a port where nothing listens.
    unreachable = create_engine(
        "postgresql+psycopg://garoupa@127.0.0.1:9/none", connect_args={"connect_timeout": 2}
    )

    def session_on_unreachable() -> Iterator[Session]:
        with Session(unreachable) as session:
            yield session

    app: FastAPI = api.client.app  # type: ignore[assignment]
    app.dependency_overrides[get_session] = session_on_unreachable
    try:
        response = api.client.get("/ready")
    finally:
        app.dependency_overrides.clear()
        unreachable.dispose()
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unreachable"
    assert "database unreachable" in response.json()["reasons"][0]


def test_prometheus_content_type_is_the_librarys(api: Api) -> None:
    from prometheus_client import CONTENT_TYPE_LATEST as library_content_type

    response = api.client.get("/metrics")
    assert response.headers["content-type"] == library_content_type == CONTENT_TYPE_LATEST


def test_metrics_survive_a_process_killed_while_creating_its_value_file(api: Api) -> None:
    auth = bearer(token_for(api.client))
    assert api.client.post("/predict/", json=SUSU, headers=auth).status_code == 200
    # What a process SIGKILLed between creating its file and sizing it leaves behind
    # (pid 0 is never a process's, so no live process owns this name).
    leftover = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]) / "counter_0.db"
    leftover.touch()
    try:
        response = api.client.get("/metrics")
    finally:
        leftover.unlink()
    assert response.status_code == 200
    assert predict_count(response.text) >= 1


def test_metrics_count_requests_predictions_tokens_and_jobs(api: Api) -> None:
    before = api.client.get("/metrics").text
    auth = bearer(token_for(api.client))
    for _ in range(3):
        assert api.client.post("/predict/", json=SUSU, headers=auth).status_code == 200
    api.client.post(
        "/predict/batch", json={"product_names": ["indomie goreng", "rinso 800g"]}, headers=auth
    )
    api.client.post("/auth/token", data={"grant_type": "client_credentials", "client_id": "svc"})
    api.client.get("/training/not-a-job", headers=auth)
    after = api.client.get("/metrics")
    assert after.status_code == 200
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text

    assert predict_count(text) - predict_count(before) == 3
    missing_job = (("method", "GET"), ("route", "/training/{job_id}"), ("status", "404"))
    assert samples(text, "garoupa_http_requests_total")[missing_job] >= 1
    # Raw paths never become labels: no unbounded label values.
    assert "not-a-job" not in text
    latency = samples(text, "garoupa_http_request_duration_seconds_count")
    assert latency[(("method", "POST"), ("route", "/predict/"))] >= 3
    categories = samples(text, "garoupa_predictions_total")
    assert categories[(("category", "Susu"),)] >= 3
    tokens = samples(text, "garoupa_token_requests_total")
    assert tokens[(("outcome", "issued"),)] >= 1
    assert tokens[(("outcome", "invalid_client"),)] >= 1
    assert samples(text, "garoupa_model_active_info") == {(("version", "v1.0.0"),): 1.0}
    assert samples(text, "garoupa_model_serving")[(("version", "v1.0.0"),)] == 1.0
    assert set(samples(text, "garoupa_training_jobs")) == {
        (("status", s),) for s in ("queued", "running", "succeeded", "failed")
    }


def test_request_id_is_taken_or_generated_and_echoed(api: Api) -> None:
    given = api.client.get("/health", headers={"X-Request-ID": "abc-123.DEF"})
    assert given.headers["x-request-id"] == "abc-123.DEF"
    generated = api.client.get("/health")
    assert len(generated.headers["x-request-id"]) == 32
    forged = api.client.get("/health", headers={"X-Request-ID": "a b\tlevel=ERROR"})
    assert forged.headers["x-request-id"] != "a b\tlevel=ERROR"


@pytest.mark.e2e
def test_metrics_add_up_across_two_workers(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    process, server = start_server(
        tmp_path, {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}, train_first=True, workers=2
    )
    try:
        assert server.cli("add", "Counter", "counter", "counter-secret-1").returncode == 0
        token = httpx.post(
            f"{server.url}/auth/token",
            data={"grant_type": "client_credentials"},
            auth=("counter", "counter-secret-1"),
        ).json()["access_token"]
        for _ in range(40):
            # A new connection each time lets the kernel spread requests over workers.
            response = httpx.post(
                f"{server.url}/predict/", json=SUSU, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 200
        pids = {p.name.split("_")[-1] for p in metrics_dir.glob("counter_*.db")}
        assert len(pids) >= 2, "requests did not reach both workers"
        # Whichever worker answers the scrape, the count is the total of both.
        for _ in range(6):
            assert predict_count(httpx.get(f"{server.url}/metrics").text) == 40
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.mark.e2e
def test_production_logs_are_json_lines_with_request_context_and_no_secrets(
    tmp_path: Path,
) -> None:
    process, server = start_server(tmp_path, {"ENVIRONMENT": "production"}, train_first=True)
    secret = "json-log-secret-0123"
    try:
        assert server.cli("add", "Logger", "logger", secret).returncode == 0
        token = httpx.post(
            f"{server.url}/auth/token",
            data={"grant_type": "client_credentials"},
            auth=("logger", secret),
        ).json()["access_token"]
        response = httpx.post(
            f"{server.url}/predict/",
            json=SUSU,
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "trace-42"},
        )
        assert response.headers["x-request-id"] == "trace-42"
        httpx.post(
            f"{server.url}/auth/token",
            data={"grant_type": "client_credentials"},
            auth=("logger", "wrong-secret-guess"),
        )
    finally:
        process.terminate()
        process.wait(timeout=15)
    log = server.log.read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert lines, "no log lines"
    requests = [line for line in lines if line.get("message") == "request"]
    traced = [line for line in requests if line.get("request_id") == "trace-42"]
    assert len(traced) == 1
    assert traced[0]["client_id"] == "logger"
    assert traced[0]["route"] == "/predict/"
    assert traced[0]["status"] == 200
    assert traced[0]["duration_ms"] > 0
    assert {"time", "level", "logger"} <= set(traced[0])
    for needle in (secret, "wrong-secret-guess", token, TEST_SECRET_KEY):
        assert needle not in log
