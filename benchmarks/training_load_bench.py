"""POST /predict/ latency with and without a training job running, and training wall times.

One uvicorn worker serves; load is POST /predict/ at a fixed concurrency, measured
first with no job, then while a job trains on the Instacart CSV from
../shared/datasets (same run, same server). Then each shared CSV is trained
through the API on its own (include_base_data=false) and the job's wall time is
reported.

    python benchmarks/training_load_bench.py [--duration 20] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.loadgen import (  # noqa: E402
    DATASETS,
    have_wrk,
    load,
    prepare_deployment,
    token,
    uvicorn_server,
)

INSTACART = "instacart_department.csv"
BIGBASKET = "bigbasket_category_with_brand.csv"


def start_job(base: str, bearer: str, data_path: str) -> str:
    response = httpx.post(
        f"{base}/training/",
        json={"new_data_path": data_path, "include_base_data": False, "activate": False},
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=120,
    )
    response.raise_for_status()
    return str(response.json()["job_id"])


def job_status(base: str, bearer: str, job_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{base}/training/{job_id}", headers={"Authorization": f"Bearer {bearer}"}, timeout=30
    )
    response.raise_for_status()
    return dict(response.json())


def wait_for(base: str, bearer: str, job_id: str, done: bool) -> dict[str, Any]:
    """Until the job is fitting (done=False) or finished (done=True)."""
    while True:
        job = job_status(base, bearer, job_id)
        if job["status"] in ("succeeded", "failed"):
            return job
        if not done and job["stage"] not in (None, "load"):
            return job
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds per measurement")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    missing = [n for n in (INSTACART, BIGBASKET) if not (DATASETS / n).exists()]
    if missing:
        sys.exit(f"shared datasets not found in {DATASETS}: {', '.join(missing)}")

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = prepare_deployment(workdir)
        for name in (INSTACART, BIGBASKET):
            # A copy inside this throw-away data directory: uploads are confined to it.
            shutil.copy(DATASETS / name, workdir / "data" / name)
        with uvicorn_server(env) as base:
            predict_token, train_token = token(base, "predict"), token(base, "train")
            url = f"{base}/predict/"
            print(
                f"load: {'wrk' if have_wrk() else 'httpx'}, c={args.concurrency}, "
                f"{args.duration} s each, 1 uvicorn worker, {os.cpu_count()} cores\n"
            )
            idle = load(url, predict_token, args.concurrency, args.duration)
            job_id = start_job(base, train_token, INSTACART)
            job = wait_for(base, train_token, job_id, done=False)
            busy = load(url, predict_token, args.concurrency, args.duration)
            still = job_status(base, train_token, job_id)["status"] == "running"
            print("| condition | requests/s | p50 ms | p99 ms | errors |")
            print("|---|---:|---:|---:|---:|")
            print(
                f"| no job | {idle.rps:,.0f} | {idle.p50_ms:.2f} | {idle.p99_ms:.2f} "
                f"| {idle.errors} |"
            )
            print(
                f"| training on {INSTACART} (stage {job['stage']}) | {busy.rps:,.0f} "
                f"| {busy.p50_ms:.2f} | {busy.p99_ms:.2f} | {busy.errors} |"
            )
            print(f"\np99 during training / p99 without: {busy.p99_ms / idle.p99_ms:.2f}x")
            if not still:
                print("warning: the job finished before the loaded window ended")
            first = wait_for(base, train_token, job_id, done=True)
            timings = [(INSTACART, first)]
            second_id = start_job(base, train_token, BIGBASKET)
            timings.append((BIGBASKET, wait_for(base, train_token, second_id, done=True)))
            print("\n| dataset | rows used | job wall time s | macro-F1 | ECE |")
            print("|---|---:|---:|---:|---:|")
            for name, result in timings:
                m = result["metrics"] or {}
                print(
                    f"| {name} | {result['data_rows']} | {result['duration_seconds']:.1f} "
                    f"| {m.get('macro_f1', float('nan')):.4f} | {m.get('ece', float('nan')):.4f} |"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
