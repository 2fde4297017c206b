"""What shadow evaluation costs the served requests: latency and throughput with a
shadow run of a candidate version off, at the default share (0.1) and at every
item (1.0), in interleaved rounds on one server.

    python benchmarks/shadow_cost.py [--duration 10] [--rounds 3] [--workers 1]
        [--concurrency 8] [--rates 0.1 1.0]

The deployment serves the shipped model (v1.0.0) with a candidate trained on
the same data by logistic regression (v1.0.1). Between cells the run is started
or stopped through the API, and the next cell waits until /metrics shows every
worker following (or no longer following) it. Single predictions are loaded
with wrk when installed. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.loadgen import (  # noqa: E402
    ROOT,
    Result,
    have_wrk,
    load,
    prepare_deployment,
    token,
    uvicorn_server,
)

CANDIDATE = "v1.0.1"
SHADOW = f"/models/{CANDIDATE}/shadow"
FOLLOW_TIMEOUT_SECONDS = 60.0


def _following(base: str) -> float:
    text = httpx.get(f"{base}/metrics").text
    found = re.search(rf'^garoupa_shadow_following\{{version="{CANDIDATE}"\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def _set_rate(base: str, bearer: str, rate: float | None, workers: int) -> None:
    """Start the run at `rate` (None: stop it) and wait until every worker has followed."""
    auth = {"Authorization": f"Bearer {bearer}"}
    httpx.delete(f"{base}{SHADOW}", headers=auth)
    deadline = time.monotonic() + FOLLOW_TIMEOUT_SECONDS
    while _following(base) > 0:
        if time.monotonic() > deadline:
            raise RuntimeError("workers still follow a stopped shadow run")
        time.sleep(0.2)
    if rate is None:
        return
    started = httpx.post(f"{base}{SHADOW}", json={"sample_rate": rate}, headers=auth)
    started.raise_for_status()
    while _following(base) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError("not every worker follows the shadow run")
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per cell")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers")
    parser.add_argument("--concurrency", type=int, default=8, help="connections")
    parser.add_argument("--rates", type=float, nargs="+", default=[0.1, 1.0])
    args = parser.parse_args(argv)

    generator = "wrk" if have_wrk() else "httpx (asyncio)"
    with tempfile.TemporaryDirectory() as tmp:
        env = prepare_deployment(Path(tmp))
        subprocess.run(
            [sys.executable, str(ROOT / "train.py"), "--algorithm", "logistic_regression"]
            + ["--no-activate"],
            env=env,
            cwd=tmp,
            check=True,
            capture_output=True,
        )
        with uvicorn_server(env, workers=args.workers) as base:
            bearer = token(base, "predict train")
            modes: list[float | None] = [None, *args.rates]
            runs: dict[float | None, list[Result]] = {mode: [] for mode in modes}
            for round_number in range(args.rounds):
                # Alternating order, so that drift on the machine favours no mode.
                order = modes if round_number % 2 == 0 else modes[::-1]
                for mode in order:
                    _set_rate(base, bearer, mode, args.workers)
                    runs[mode].append(
                        load(f"{base}/predict/", bearer, args.concurrency, args.duration)
                    )
            _set_rate(base, bearer, None, args.workers)

    print(
        f"load generator: {generator}, single predictions, c={args.concurrency}, "
        f"{args.workers} worker(s), {args.duration} s a cell, {args.rounds} interleaved rounds "
        f"(median shown), {os.cpu_count()} cores\n"
    )
    print("| shadow | requests/s | p50 ms | p99 ms | p99 ÷ off | each round's p99 ÷ off |")
    print("|---|---:|---:|---:|---:|---|")
    off_p99 = statistics.median(r.p99_ms for r in runs[None])
    for mode in modes:
        results = runs[mode]
        p99 = statistics.median(r.p99_ms for r in results)
        pairs = " ".join(
            f"{r.p99_ms / o.p99_ms:.0%}" for r, o in zip(results, runs[None], strict=True)
        )
        errors = sum(r.errors for r in results)
        label = "off" if mode is None else f"sample_rate {mode}"
        print(
            f"| {label} | {statistics.median(r.rps for r in results):,.0f} "
            f"| {statistics.median(r.p50_ms for r in results):.2f} | {p99:.2f} "
            f"| **{p99 / off_p99:.0%}** | {pairs} |" + (f" errors: {errors}" if errors else "")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
