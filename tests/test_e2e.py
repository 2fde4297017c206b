"""End to end: a live uvicorn server, real OAuth2 client libraries, the CLI and the README."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session

from tests.support import (
    REPO_ROOT,
    TEST_SECRET_KEY,
    LiveServer,
    readme_bash_block,
    start_server,
)

pytestmark = pytest.mark.e2e

CLIENT_ID = "testclient01"
CLIENT_SECRET = "supersecret123"
PREDICT = {"product_name": "susu ultra coklat 250ml"}


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
    """The README's bash block `marker`, aimed at url."""
    return readme_bash_block(marker).replace("http://127.0.0.1:8000", url)


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
    # The history call at the end reads back the prediction just made, newest first.
    # curl prints no newline: the history answer is the last JSON object of the output.
    history = json.loads(outputs[outputs.rindex('{"items":') :])
    assert history["items"][0]["product_name"] == "susu ultra coklat 250ml"
    assert history["items"][0]["client_id"] == "testclient01"


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
    # The shadow run of v1.0.1 against v1.0.0: started, reported, stopped.
    assert '"model_version":"v1.0.1","active_version":"v1.0.0","sample_rate":0.1' in out
    assert '"status":"ended","started_at"' in out
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
            # Until refused, the token is accepted: an outage is not a refusal.
            assert_authenticated_call(response)
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
