"""Serving several workers forked from gunicorn's preloading master (app/gunicorn_conf.py)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client

from tests.polling import wait_until
from tests.support import REPO_ROOT, LiveServer, start_server
from tests.support.processes import child_pids

pytestmark = pytest.mark.e2e

PREDICT = {"product_name": "susu ultra coklat 250ml"}
WORKERS = 2


def _served_versions(server: LiveServer, headers: dict[str, str], calls: int) -> list[str]:
    versions = []
    for _ in range(calls):
        # A new connection per request lets the kernel spread them over the workers.
        response = httpx.post(f"{server.url}/predict/", json=PREDICT, headers=headers)
        assert response.status_code == 200, response.text
        versions.append(str(response.json()["model_version"]))
    return versions


def test_forked_workers_serve_the_preloaded_model_log_every_request_and_swap_versions(
    tmp_path: Path,
) -> None:
    process, server = start_server(
        tmp_path,
        {"MODEL_REFRESH_SECONDS": "1"},
        train_first=True,
        workers=WORKERS,
        server="gunicorn",
    )
    try:
        assert server.cli("add", "Forked", "forked", "forked-secret-1").returncode == 0
        wait_until(
            lambda: (
                len(child_pids(process.pid)) == WORKERS
                and server.log.read_text().count("Application startup complete") == WORKERS
            ),
            timeout=120,
            message="both workers started",
        )
        log = server.log.read_text()
        # The master loaded the version once; each worker took that copy.
        assert "model preloaded for the workers version=v1.0.0" in log
        serving = re.findall(r"serving model version version=(\S+) source=\"([^\"]+)\"", log)
        assert serving == [("v1.0.0", "stored scorer, preloaded")] * WORKERS

        with OAuth2Client(
            "forked",
            "forked-secret-1",
            scope="predict",
            token_endpoint_auth_method="client_secret_post",
        ) as oauth:
            token = oauth.fetch_token(f"{server.url}/auth/token", grant_type="client_credentials")
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        assert set(_served_versions(server, headers, 40)) == {"v1.0.0"}

        # Every request is logged once, by the worker that served it: a forked
        # worker has its own log writer, and no line of the master's is repeated.
        wait_until(
            lambda: server.log.read_text().count("route=/predict/ status=200") == 40,
            timeout=30,
            message="40 request lines",
        )
        log = server.log.read_text()
        assert log.count("model preloaded for the workers") == 1

        # A new version is served by both workers: each loads it on its own.
        retrain = subprocess.run(
            [sys.executable, str(REPO_ROOT / "train.py"), "--algorithm", "logistic_regression"],
            env=server.env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert retrain.returncode == 0, retrain.stderr
        wait_until(
            lambda: set(_served_versions(server, headers, 20)) == {"v1.0.1"},
            timeout=60,
            message="every worker serving v1.0.1",
        )
        # Metrics from both workers are summed, and only live workers count as serving.
        metrics = httpx.get(f"{server.url}/metrics", headers=headers)
        assert metrics.status_code == 200, metrics.text
        assert 'garoupa_model_serving{version="v1.0.1"} 1.0' in metrics.text
        assert 'garoupa_model_serving{version="v1.0.0"} 0.0' in metrics.text

        # Each worker loaded v1.0.1 on its own; after a HUP the master preloads it
        # and the workers that replace the old ones share its copy.
        os.kill(process.pid, signal.SIGHUP)
        preloaded = 'serving model version version=v1.0.1 source="stored scorer, preloaded"'
        wait_until(
            lambda: server.log.read_text().count(preloaded) == WORKERS,
            timeout=120,
            message="both new workers serving the preloaded v1.0.1",
        )
        log = server.log.read_text()
        assert log.count("model preloaded for the workers version=v1.0.1") == 1
        assert set(_served_versions(server, headers, 20)) == {"v1.0.1"}
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_worker_that_dies_is_replaced_by_one_that_serves(tmp_path: Path) -> None:
    process, server = start_server(tmp_path, train_first=True, workers=WORKERS, server="gunicorn")
    try:
        assert server.cli("add", "Forked", "forked", "forked-secret-1").returncode == 0
        wait_until(
            lambda: len(child_pids(process.pid)) == WORKERS,
            timeout=120,
            message="both workers forked",
        )
        victim = min(child_pids(process.pid))
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: (
                victim not in child_pids(process.pid) and len(child_pids(process.pid)) == WORKERS
            ),
            timeout=120,
            message="the killed worker replaced",
        )
        token = httpx.post(
            f"{server.url}/auth/token",
            data={"grant_type": "client_credentials"},
            auth=("forked", "forked-secret-1"),
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        wait_until(
            lambda: server.log.read_text().count("Application startup complete") == WORKERS + 1,
            timeout=120,
            message="the new worker started",
        )
        assert set(_served_versions(server, headers, 20)) == {"v1.0.0"}
        # Its live gauges (the version it served, its log queue) went with it.
        left = [p.name for p in (tmp_path / "prometheus").glob(f"gauge_live*_{victim}.db")]
        assert left == []
    finally:
        process.terminate()
        process.wait(timeout=30)
