"""HTTP throughput and latency of POST /predict/ against a constant-response route.

Both routes sit behind the same bearer-token dependency (scope `predict`) in the
same app, served by one uvicorn worker, and are measured in the same run at
concurrency 1, 8 and 32, so the difference is the cost of prediction itself.
Load comes from `wrk` when installed (Debian package `wrk`), else from a bounded
asyncio + httpx generator (which measures less precisely: it shares the GIL of
its own process and costs more per request than wrk).

    python benchmarks/http_bench.py [--duration 10] [--concurrency 1 8 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi import FastAPI  # noqa: E402

from app.api.deps import PredictScope  # noqa: E402
from app.core.config import load_settings  # noqa: E402
from app.main import create_app  # noqa: E402

CONSTANT = {
    "predicted_category": "Susu",
    "prediction_score": 0.987,
    "model_version": "v1.0.0",
    "top_k": [{"category": "Susu", "score": 0.987}],
}
BODY = '{"product_name": "susu ultra coklat 250ml"}'
CLIENT_ID, CLIENT_SECRET = "bench-client", "bench-secret-0123456789"


def bench_app() -> FastAPI:
    """The real app plus a constant route behind the same auth (uvicorn --factory)."""
    app = create_app(load_settings())

    @app.post("/bench/constant")
    async def constant(_: PredictScope) -> dict[str, object]:
        return CONSTANT

    return app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare(workdir: Path) -> dict[str, str]:
    """Train the shipped model and register a client in a throw-away database."""
    env = {
        **os.environ,
        "SECRET_KEY": "bench-" + "k" * 40,
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
        "MODEL_DIR": str(workdir / "models"),
        "DATA_DIR": str(workdir / "data"),
        "PYTHONPATH": str(ROOT),
    }
    for command in (
        [sys.executable, str(ROOT / "train.py")],
        [
            sys.executable,
            str(ROOT / "scripts" / "manage_clients.py"),
            "add",
            "Benchmark",
            CLIENT_ID,
            CLIENT_SECRET,
            "--scopes",
            "predict",
        ],
    ):
        subprocess.run(command, env=env, cwd=workdir, check=True, capture_output=True)
    return env


def _wrk(url: str, token: str, concurrency: int, duration: int) -> tuple[float, float, float]:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    )
    try:
        result = subprocess.run(
            [
                "wrk",
                f"-t{min(concurrency, 2)}",
                f"-c{concurrency}",
                f"-d{duration}s",
                "--latency",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        script.unlink()
    out = result.stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return rps, _wrk_ms(out, "50"), _wrk_ms(out, "99")


def _wrk_ms(out: str, pct: str) -> float:
    match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    assert match, out
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


async def _httpx_load(
    url: str, token: str, concurrency: int, duration: int
) -> tuple[float, float, float]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    deadline = time.perf_counter() + duration

    async def worker(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            response = await client.post(url, content=BODY, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{url}: {response.status_code} {response.text}")
            latencies.append(time.perf_counter() - started)

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000
    return len(latencies) / elapsed, float(np.median(ms)), float(np.percentile(ms, 99))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--load", choices=["auto", "wrk", "httpx"], default="auto")
    args = parser.parse_args(argv)
    use_wrk = args.load == "wrk" or (args.load == "auto" and shutil.which("wrk") is not None)

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = _prepare(workdir)
        port = _free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "benchmarks.http_bench:bench_app",
                "--factory",
                "--port",
                str(port),
                "--workers",
                "1",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(150):
                try:
                    httpx.get(f"{base}/.well-known/oauth-authorization-server", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            token = httpx.post(
                f"{base}/auth/token",
                data={"grant_type": "client_credentials"},
                auth=(CLIENT_ID, CLIENT_SECRET),
            ).json()["access_token"]
            print(
                f"load generator: {'wrk' if use_wrk else 'httpx (asyncio)'}, "
                f"{args.duration} s per cell, 1 uvicorn worker, {os.cpu_count()} cores\n"
            )
            print("| concurrency | route | requests/s | p50 ms | p99 ms |")
            print("|---:|---|---:|---:|---:|")
            for concurrency in args.concurrency:
                results = {}
                for name, path in (("constant", "/bench/constant"), ("/predict/", "/predict/")):
                    url = base + path
                    if use_wrk:
                        results[name] = _wrk(url, token, concurrency, args.duration)
                    else:
                        results[name] = asyncio.run(
                            _httpx_load(url, token, concurrency, args.duration)
                        )
                    rps, p50, p99 = results[name]
                    print(f"| {concurrency} | {name} | {rps:,.0f} | {p50:.2f} | {p99:.2f} |")
                ratio = results["/predict/"][0] / results["constant"][0]
                print(f"| {concurrency} | **/predict/ ÷ constant** | **{ratio:.0%}** | | |")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
