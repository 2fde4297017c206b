"""A live server (uvicorn, or gunicorn as configured) in its own process, on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.db.database import open_database
from tests.support.databases import live_database_url
from tests.support.paths import REPO_ROOT, TEST_SECRET_KEY


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
    server: str = "uvicorn",
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
    # Servers check the schema and never migrate it; `make run` migrates first too.
    open_database(env["DATABASE_URL"], migrate=True).dispose()
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
    if server == "gunicorn":
        # As docs/deployment.md serves several workers from one preloaded master.
        command = ["gunicorn", "-c", "python:app.gunicorn_conf", "-w", str(workers)]
        command += ["-b", f"127.0.0.1:{port}", "app.main:app"]
    else:
        command = ["uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--workers", str(workers)]
    process = subprocess.Popen(
        [sys.executable, "-m", *command],
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
