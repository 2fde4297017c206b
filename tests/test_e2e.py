"""End to end: a live uvicorn server, real OAuth2 client libraries, the CLI and the README."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session

from tests.conftest import REPO_ROOT, TEST_SECRET_KEY, live_database_url

pytestmark = pytest.mark.e2e

CLIENT_ID = "testclient01"
CLIENT_SECRET = "supersecret123"
PREDICT = {"product_name": "susu ultra coklat 250ml"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    env: dict[str, str]
    log: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(REPO_ROOT / "scripts" / "manage_clients.py"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.log.parent,
        )


def start_server(
    tmp: Path,
    extra_env: dict[str, str] | None = None,
    *,
    train_first: bool = False,
    workers: int = 1,
) -> tuple[subprocess.Popen[bytes], LiveServer]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    metrics_dir = tmp / "prometheus"
    metrics_dir.mkdir(exist_ok=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SECRET_KEY", "DATABASE_URL"))},
        "ENVIRONMENT": "development",
        "SECRET_KEY": TEST_SECRET_KEY,
        "DATABASE_URL": live_database_url(tmp),
        "JWT_ISSUER": url,
        "DATA_DIR": str(tmp / "data"),
        "MODEL_DIR": str(tmp / "models"),
        "PYTHONPATH": str(REPO_ROOT),
        # Each server counts its own requests, not the test process's.
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        **(extra_env or {}),
    }
    log = tmp / "server.log"
    if train_first:
        # The README's manual route: train the shipped data, then serve.
        trained = subprocess.run(
            [sys.executable, str(REPO_ROOT / "train.py")],
            env=env,
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert trained.returncode == 0, trained.stderr
        assert "Saved v1.0.0" in trained.stdout
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        cwd=tmp,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = LiveServer(url, env, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if (
                httpx.get(f"{url}/.well-known/oauth-authorization-server", timeout=1).status_code
                == 200
            ):
                return process, server
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def live_server(
    database_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    # Depends on the backend so that each pass of the suite gets its own server.
    tmp = tmp_path_factory.mktemp("live")
    process, server = start_server(tmp, train_first=True)
    added = server.cli("add", "My Test App", CLIENT_ID, CLIENT_SECRET)
    assert added.returncode == 0, added.stderr
    try:
        yield server
    finally:
        process.terminate()
        process.wait(timeout=15)


def assert_authenticated_call(response: httpx.Response | object) -> None:
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["predicted_category"] == "Susu"
    assert body["model_version"] == "v1.0.0"


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_gets_token_and_calls_api(live_server: LiveServer, auth_method: str) -> None:
    with OAuth2Client(
        CLIENT_ID, CLIENT_SECRET, token_endpoint_auth_method=auth_method, scope="predict"
    ) as oauth:
        token = oauth.fetch_token(f"{live_server.url}/auth/token", grant_type="client_credentials")
        assert token["token_type"].lower() == "bearer"
        assert token["scope"] == "predict"
        assert_authenticated_call(oauth.post(f"{live_server.url}/predict/", json=PREDICT))


def test_requests_oauthlib_backend_application_client(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # oauthlib refuses plain http unless told; the live test server has no TLS.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    session = OAuth2Session(client=BackendApplicationClient(client_id=CLIENT_ID))
    token = session.fetch_token(
        token_url=f"{live_server.url}/auth/token", client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )
    assert token["expires_in"] == 1800
    assert_authenticated_call(session.post(f"{live_server.url}/predict/", json=PREDICT))


def readme_block(marker: str, url: str) -> str:
    """The bash block between `<!-- marker:start -->` and `<!-- marker:end -->`, aimed at url."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split(f"<!-- {marker}:start -->")[1].split(f"<!-- {marker}:end -->")[0]
    script = re.search(r"```bash\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    return script.replace("http://127.0.0.1:8000", url)


def test_readme_curl_examples_run_as_written(live_server: LiveServer) -> None:
    script = readme_block("curl-examples", live_server.url)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    outputs = result.stdout
    assert outputs.count('"access_token"') == 2
    assert '"scope":"predict"' in outputs.replace(" ", "")
    assert '"predicted_category":"Susu"' in outputs.replace(" ", "")


def test_readme_retraining_examples_run_as_written(live_server: LiveServer, tmp_path: Path) -> None:
    script = readme_block("curl-examples", live_server.url) + readme_block(
        "retraining-examples", live_server.url
    )
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.replace(" ", "")
    assert '"status":"succeeded"' in out
    assert '"produced_version":"v1.0.1"' in out
    assert '"best_params":{"clf__C":' in out
    assert '"version":"v1.0.0","algorithm"' in out and '"is_active":true' in out
    assert '"category":"Teh","predicted_category":"MinumanRingan"' in out
    # The roll-back at the end leaves v1.0.0 serving.
    with OAuth2Client(CLIENT_ID, CLIENT_SECRET) as oauth:
        oauth.fetch_token(f"{live_server.url}/auth/token", grant_type="client_credentials")
        assert_authenticated_call(oauth.post(f"{live_server.url}/predict/", json=PREDICT))


def test_cli_deactivation_refuses_token_within_5_seconds(live_server: LiveServer) -> None:
    assert live_server.cli("add", "Short Lived", "shortlived", "shortlived-secret").returncode == 0
    with OAuth2Client("shortlived", "shortlived-secret") as oauth:
        oauth.fetch_token(f"{live_server.url}/auth/token", grant_type="client_credentials")
        assert_authenticated_call(oauth.post(f"{live_server.url}/predict/", json=PREDICT))
        assert live_server.cli("deactivate", "shortlived").returncode == 0
        deactivated_at = time.monotonic()
        while True:
            response = oauth.post(f"{live_server.url}/predict/", json=PREDICT)
            if response.status_code == 401:
                break
            assert time.monotonic() - deactivated_at < 5, "token still accepted after 5 s"
            time.sleep(0.1)
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_secrets_and_tokens_never_reach_the_log(live_server: LiveServer) -> None:
    with OAuth2Client(CLIENT_ID, CLIENT_SECRET) as oauth:
        token = oauth.fetch_token(f"{live_server.url}/auth/token", grant_type="client_credentials")
        oauth.post(f"{live_server.url}/predict/", json=PREDICT)
    httpx.post(
        f"{live_server.url}/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": "wrong-guess-123",
        },
    )
    log = live_server.log.read_text()
    assert CLIENT_SECRET not in log
    assert "wrong-guess-123" not in log
    assert token["access_token"] not in log
    assert TEST_SECRET_KEY not in log


def test_every_worker_serves_a_new_version_within_5_seconds(
    tmp_path: Path,
) -> None:
    process, server = start_server(
        tmp_path, {"MODEL_REFRESH_SECONDS": "1"}, train_first=True, workers=2
    )
    try:
        assert server.cli("add", "Swapper", "swapper", "swapper-secret-1").returncode == 0
        token = httpx.post(
            f"{server.url}/auth/token",
            data={"grant_type": "client_credentials"},
            auth=("swapper", "swapper-secret-1"),
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        def served_version() -> str:
            # A new connection per request lets the kernel spread them over workers.
            response = httpx.post(f"{server.url}/predict/", json=PREDICT, headers=headers)
            assert response.status_code == 200, response.text
            return str(response.json()["model_version"])

        assert {served_version() for _ in range(20)} == {"v1.0.0"}
        retrain = subprocess.run(
            [sys.executable, str(REPO_ROOT / "train.py"), "--algorithm", "logistic_regression"],
            env=server.env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert retrain.returncode == 0, retrain.stderr
        activated = time.monotonic()
        # Requests during the swap all succeed (served_version asserts 200).
        while time.monotonic() - activated < 5:
            served_version()
            time.sleep(0.02)
        assert {served_version() for _ in range(60)} == {"v1.0.1"}
    finally:
        process.terminate()
        process.wait(timeout=15)
