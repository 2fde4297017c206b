"""`make run` on a fresh copy of the project: .env, database, first model, demo client, serving."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support import REPO_ROOT, free_port

pytestmark = pytest.mark.e2e

# What a fresh clone does not have (or must not share with the developer's tree).
_NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".env",
    ".demo-client.json",
    "*.db",
    "*.db-*",
    "*.lock",
    "ml_model_artifacts",
    "__pycache__",
    ".*_cache",
    "test-artifacts",
)


@pytest.fixture
def fresh_copy(tmp_path: Path) -> Path:
    project = tmp_path / "garoupa"
    shutil.copytree(REPO_ROOT, project, ignore=_NOT_IN_A_CLONE)
    return project


def test_make_run_trains_creates_a_demo_client_and_serves(fresh_copy: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECRET_KEY", "DATABASE_URL"))}
    # Reuse the test venv: installing requirements is make's job, timed elsewhere.
    venv = Path(sys.prefix)
    command = ["make", "run", f"VENV={venv}", f"PORT={port}"]
    log = fresh_copy / "make-run.log"
    process = subprocess.Popen(
        command,
        cwd=fresh_copy,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, process, log)
        output = log.read_text()
        assert "Wrote a random SECRET_KEY" in output
        assert "No model yet: training" in output
        assert "Saved v1.0.0" in output
        assert "Created the demo client" in output

        credentials = json.loads((fresh_copy / ".demo-client.json").read_text())
        assert (fresh_copy / ".demo-client.json").stat().st_mode & 0o077 == 0
        assert credentials["client_secret"] not in output
        token = httpx.post(
            f"{url}/auth/token",
            data={"grant_type": "client_credentials"},
            auth=(credentials["client_id"], credentials["client_secret"]),
        ).json()["access_token"]
        answer = httpx.post(
            f"{url}/predict/",
            json={"product_name": "susu ultra coklat 250ml"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 200
        assert answer.json()["predicted_category"] == "Susu"
        assert httpx.get(f"{url}/docs").status_code == 200
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)

    # A second start does no first-run work again.
    again = subprocess.run(
        [sys.executable, "scripts/bootstrap.py"],
        cwd=fresh_copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert "No model yet" not in again.stdout
    assert "Created the demo client" not in again.stdout
    assert "Wrote a random SECRET_KEY" not in again.stdout


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"make run exited {process.returncode}: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/.well-known/oauth-authorization-server", timeout=1).is_success:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"make run did not serve within 180 s: {log.read_text()[-3000:]}")
