"""HTTP throughput and latency of POST /predict/ against a constant-response route.

Both routes sit behind the same bearer-token dependency (scope `predict`) in the
same app, served by one uvicorn worker, and are measured in the same run at
concurrency 1, 8 and 32, so the difference is the cost of prediction itself.

    python benchmarks/http_bench.py [--duration 10] [--concurrency 1 8 32]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi import FastAPI  # noqa: E402

from app.api.deps import PredictScope  # noqa: E402
from app.core.config import load_settings  # noqa: E402
from app.main import create_app  # noqa: E402
from benchmarks.loadgen import (  # noqa: E402
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
    args = parser.parse_args(argv)

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


if __name__ == "__main__":
    raise SystemExit(main())
