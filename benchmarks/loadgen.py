"""Shared benchmark plumbing: a throw-away deployment, a live uvicorn, and load generation.

Load comes from `wrk` when installed (Debian package `wrk`), else from a bounded
asyncio + httpx generator, which measures less precisely (it shares one GIL and
costs more per request than wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
PREDICT_BODY = '{"product_name": "susu ultra coklat 250ml"}'
CLIENT_ID, CLIENT_SECRET = "bench-client", "bench-secret-0123456789"
# A model on a large catalogue takes minutes to train on a loaded 2-core machine.
TRAIN_TIMEOUT_SECONDS = 3600.0


@dataclass(frozen=True)
class Result:
    """Requests per second and latency percentiles in milliseconds."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int = 0


def have_wrk() -> bool:
    """True when the wrk binary is on PATH."""
    return shutil.which("wrk") is not None


def prepare_deployment(
    workdir: Path, extra_env: dict[str, str] | None = None, data: Path | None = None
) -> dict[str, str]:
    """A fresh deployment: database, a model trained on `data` (default: shipped), a client."""
    env = {
        **os.environ,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
        "MODEL_DIR": str(workdir / "models"),
        "DATA_DIR": str(workdir / "data"),
        "PYTHONPATH": str(ROOT),
        # Benchmarks measure serving, not the per-client limit one client would hit.
        "RATE_LIMIT_PREDICT": "unlimited",
        "RATE_LIMIT_TRAIN": "unlimited",
        # A LOG_LEVEL inherited from the shell must not switch request logging off.
        "LOG_LEVEL": "INFO",
        # One token fetched before the first run has to outlast the last.
        "ACCESS_TOKEN_EXPIRE_MINUTES": str(24 * 60),
        **(extra_env or {}),
    }
    (workdir / "data").mkdir(exist_ok=True)
    train = [sys.executable, str(ROOT / "train.py")]
    if data is not None:
        train += ["--data", str(data)]
    add_client = [sys.executable, str(ROOT / "scripts" / "manage_clients.py"), "add"]
    add_client += ["Benchmark", CLIENT_ID, CLIENT_SECRET, "--scopes", "predict train"]
    for command, timeout in ((train, TRAIN_TIMEOUT_SECONDS), (add_client, 120.0)):
        try:
            subprocess.run(
                command, env=env, cwd=workdir, check=True, capture_output=True, timeout=timeout
            )
        except subprocess.CalledProcessError as exc:
            tail = (exc.stderr or b"").decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(command[1:3])} failed:\n{tail}") from None
    return env


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def uvicorn_server(
    env: dict[str, str], app: str = "app.main:app", workers: int = 1, factory: bool = False
) -> Iterator[str]:
    """Serve `app` on a free port for the duration of the block; yields the base URL."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--port", str(port)]
    command += ["--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    if factory:
        command.append("--factory")
    server = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/.well-known/oauth-authorization-server", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("uvicorn did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def token(base: str, scope: str = "predict") -> str:
    """A bearer token for the benchmark client."""
    response = httpx.post(
        f"{base}/auth/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def load(url: str, bearer: str, concurrency: int, seconds: int, body: str = PREDICT_BODY) -> Result:
    """POST `body` to `url` at `concurrency` for `seconds` with wrk, else httpx."""
    if have_wrk():
        return _wrk(url, bearer, concurrency, seconds, body)
    return asyncio.run(_httpx_load(url, bearer, concurrency, seconds, body))


def _wrk(url: str, bearer: str, concurrency: int, seconds: int, body: str) -> Result:
    fd, name = tempfile.mkstemp(suffix=".lua")
    script = Path(name)
    os.close(fd)
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{body}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {bearer}"\n'
    )
    try:
        threads = min(concurrency, 2)
        result = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", "--latency"]
            + ["-s", str(script), url],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        script.unlink()
    out = result.stdout
    rps = float(_search(r"Requests/sec:\s+([\d.]+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors:.*?(\d+).*?(\d+).*?(\d+).*?(\d+)", out)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return Result(rps, _wrk_ms(out, "50"), _wrk_ms(out, "99"), errors)


def _search(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{text}")
    return match.group(1)


def _wrk_ms(out: str, pct: str) -> float:
    match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if match is None:
        raise RuntimeError(f"no {pct}% line in wrk output:\n{out}")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


async def _httpx_load(url: str, bearer: str, concurrency: int, seconds: int, body: str) -> Result:
    headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"}
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                response = await client.post(url, content=body, headers=headers)
                errors += response.status_code >= 400
            except httpx.TransportError:
                errors += 1
            latencies.append(time.perf_counter() - started)

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000
    return Result(
        len(latencies) / elapsed, float(np.median(ms)), float(np.percentile(ms, 99)), errors
    )


def add_precision_option(parser: argparse.ArgumentParser) -> None:
    """`--precision`: the SCORER_PRECISION every model the benchmark trains is stored in."""
    parser.add_argument(
        "--precision",
        choices=("float64", "float32"),
        default="float64",
        help="SCORER_PRECISION the benchmark's models are trained with (default %(default)s)",
    )


def memory_kib(pid: int) -> tuple[int, int] | None:
    """(RSS, PSS) of `pid` in KiB from /proc/<pid>/smaps_rollup, or None if it has gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("Rss", "Pss"):
            values[name] = int(rest.split()[0])
    if len(values) != 2:
        return None
    return values["Rss"], values["Pss"]
