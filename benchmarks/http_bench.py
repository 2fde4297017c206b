"""HTTP throughput and latency of POST /predict/ against a constant-response route.

Both routes sit behind the same bearer-token dependency (scope `predict`) in the
same app, served by one uvicorn worker, and are measured in the same run at
concurrency 1, 8 and 32, so the difference is the cost of prediction itself.

    python benchmarks/http_bench.py [--duration 10] [--concurrency 1 8 32]

`--log-cost` measures instead what the prediction log costs: two servers on one
deployment, PREDICTION_LOG=all and PREDICTION_LOG=off, loaded in turn (rounds
interleaved, so drift on the machine hits both alike) with single predictions
and batches of 100 names, at 1 and 2 uvicorn workers.

    python benchmarks/http_bench.py --log-cost [--duration 10] [--rounds 3] [--workers 1 2]
        [--requests single batch]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi import FastAPI  # noqa: E402

from app.api.deps import PredictScope  # noqa: E402
from app.core.config import load_settings  # noqa: E402
from app.main import create_app  # noqa: E402
from benchmarks.loadgen import (  # noqa: E402
    PREDICT_BODY,
    Result,
    have_wrk,
    load,
    prepare_deployment,
    token,
    uvicorn_server,
)

CONSTANT = {
    "predicted_category": "Susu",
    "prediction_score": 0.987,
    "model_version": "v1.0.0",
    "top_k": [{"category": "Susu", "score": 0.987}],
}


def bench_app() -> FastAPI:
    """The real app plus a constant route behind the same auth (uvicorn --factory)."""
    app = create_app(load_settings())

    @app.post("/bench/constant")
    async def constant(_: PredictScope) -> dict[str, object]:
        return CONSTANT

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--log-cost", action="store_true", help="compare PREDICTION_LOG=all with off instead"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (--log-cost)")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        choices=(1, 2),
        default=[1, 2],
        help="uvicorn workers per server (--log-cost)",
    )
    parser.add_argument(
        "--requests",
        nargs="+",
        choices=("single", "batch"),
        default=["single", "batch"],
        help="which requests to load (--log-cost)",
    )
    args = parser.parse_args(argv)
    if args.log_cost:
        return log_cost(args.duration, args.rounds, args.workers, args.requests)

    with tempfile.TemporaryDirectory() as tmp:
        env = prepare_deployment(Path(tmp))
        with uvicorn_server(env, "benchmarks.http_bench:bench_app", factory=True) as base:
            bearer = token(base)
            generator = "wrk" if have_wrk() else "httpx (asyncio)"
            print(
                f"load generator: {generator}, {args.duration} s per cell, "
                f"1 uvicorn worker, {os.cpu_count()} cores\n"
            )
            print("| concurrency | route | requests/s | p50 ms | p99 ms | errors |")
            print("|---:|---|---:|---:|---:|---:|")
            for concurrency in args.concurrency:
                results = {}
                for name, path in (("constant", "/bench/constant"), ("/predict/", "/predict/")):
                    r = load(base + path, bearer, concurrency, args.duration)
                    results[name] = r
                    print(
                        f"| {concurrency} | {name} | {r.rps:,.0f} | {r.p50_ms:.2f} "
                        f"| {r.p99_ms:.2f} | {r.errors} |"
                    )
                ratio = results["/predict/"].rps / results["constant"].rps
                print(f"| {concurrency} | **/predict/ ÷ constant** | **{ratio:.0%}** | | | |")
    return 0


# Distinct names, so the batch is not one cached name a hundred times.
BATCH_BODY = json.dumps(
    {"product_names": [f"susu ultra coklat {n}ml kotak {n % 7}" for n in range(100, 200)]}
)
LOG_CONCURRENCY = 32


def log_cost(duration: int, rounds: int, worker_counts: list[int], requests: list[str]) -> int:
    """requests/s with the prediction log on against off: single and batch, 1 and 2 workers."""
    generator = "wrk" if have_wrk() else "httpx (asyncio)"
    print(
        f"load generator: {generator}, {duration} s per cell, c={LOG_CONCURRENCY}, "
        f"{rounds} interleaved rounds (median shown), {os.cpu_count()} cores\n"
    )
    print(
        "| workers | request | log off req/s | log on req/s | on ÷ off | p99 off ms | p99 on ms "
        "| each round's on ÷ off, sorted |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        env = prepare_deployment(Path(tmp))
        for workers in worker_counts:
            with ExitStack() as stack:
                bases = {
                    mode: stack.enter_context(
                        uvicorn_server({**env, "PREDICTION_LOG": mode}, workers=workers)
                    )
                    for mode in ("off", "all")
                }
                bearers = {mode: token(base) for mode, base in bases.items()}
                for label, path, body in (
                    ("single", "/predict/", PREDICT_BODY),
                    ("batch of 100", "/predict/batch", BATCH_BODY),
                ):
                    if label.split()[0] not in requests:
                        continue
                    runs: dict[str, list[Result]] = {"off": [], "all": []}
                    for round_number in range(rounds):
                        # Which server goes first alternates, so that an order effect
                        # (with off always first, on won 7 of 7 single rounds at 2 workers)
                        # cannot favour either.
                        order = ("off", "all") if round_number % 2 == 0 else ("all", "off")
                        for mode in order:
                            url = bases[mode] + path
                            runs[mode].append(
                                load(url, bearers[mode], LOG_CONCURRENCY, duration, body)
                            )
                    off = statistics.median(r.rps for r in runs["off"])
                    on = statistics.median(r.rps for r in runs["all"])
                    # Each round's pair ran back to back: their ratios show the noise.
                    pairs = sorted(
                        a.rps / b.rps for a, b in zip(runs["all"], runs["off"], strict=True)
                    )
                    errors = sum(r.errors for rs in runs.values() for r in rs)
                    p99_off = statistics.median(r.p99_ms for r in runs["off"])
                    p99_on = statistics.median(r.p99_ms for r in runs["all"])
                    print(
                        f"| {workers} | {label} | {off:,.0f} | {on:,.0f} | **{on / off:.0%}** "
                        f"| {p99_off:.1f} | {p99_on:.1f} | "
                        + " ".join(f"{r:.0%}" for r in pairs)
                        + " |"
                        + (f" errors: {errors}" if errors else "")
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
