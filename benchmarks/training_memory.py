"""Peak memory of one training job at catalog scale, with the solver cut short.

    python benchmarks/training_memory.py --categories 1000 --rows 1000000 \
        --word-features 150000 --char-features 150000 --json training_memory.json

Issue 17 asks for the peak memory of a job on 1,000,000 names in 1,000
categories. Trained to convergence that job runs for hours on one core
(docs/performance.md), so this benchmark runs the job's whole path (load,
vectorise, the hold-out model's six fits and calibration, the scope test,
evaluation, the refit, saving the version and compiling its scorer) through
the same `execute_job` as `train.py`, but with liblinear stopped after
`--solver-passes` passes over the data (`max_iter`, not a parameter clients may
set). The memory held does not depend on how many passes the solver makes: the
matrices, liblinear's copy of a fit's rows, the weights (categories x features),
the calibration scores and the saved artifact all have their full size after
one pass. What the cut changes is the time and the accuracy, which are
reported but mean nothing here.

The catalog comes from `benchmarks/synthetic.py` (deterministic), is written
into a throw-away deployment, and the job runs in a child process on one core
(`TRAINING_CORES=1`); its peak RSS is the child's, read from the kernel's
accounting of waited-for children (`RUSAGE_CHILDREN`), so generating the catalog
in this process does not count.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import synthetic  # noqa: E402
from benchmarks.scaling_bench import make_deployment  # noqa: E402


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Peak memory of one training job (the default algorithm, one core) "
        "on a synthetic catalog, with the solver stopped after a few passes.",
    )
    parser.add_argument("--categories", type=int, default=1000, help="categories (default 1000)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows (default 1000000)")
    parser.add_argument(
        "--word-features",
        type=int,
        default=150_000,
        help="features__word__max_features (default 150000)",
    )
    parser.add_argument(
        "--char-features",
        type=int,
        default=150_000,
        help="features__char__max_features (default 150000)",
    )
    parser.add_argument(
        "--solver-passes",
        type=int,
        default=1,
        help="liblinear max_iter of every fit (default 1; memory does not depend on it)",
    )
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument(
        "--heartbeat", type=float, default=60, help="seconds between progress lines (default 60)"
    )
    parser.add_argument("--json", type=Path, help="write the measurement here (JSON)")
    parser.add_argument(
        "--workdir", type=Path, help="keep the deployment here instead of a temporary directory"
    )
    parser.add_argument("--child", nargs=2, metavar=("CSV", "PARAMS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("categories", "rows", "word_features", "char_features", "solver_passes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def run_job(csv: Path, params: dict[str, Any]) -> None:
    """The child: train.py's path (a job row, then `execute_job`) with `params` as given.

    The job checks its params against the allow-list, which has no max_iter (no
    client may set it): this process alone, a benchmark, adds it. The
    deployment's settings come from the environment the parent set.
    """
    from app.core.config import load_settings
    from app.db.database import open_database
    from app.ml.algorithms import TUNABLE_PARAMS, Tunable
    from app.services.job_runner import execute_job
    from app.services.models import ModelRegistry
    from app.services.training_jobs import TrainingJobService
    from app.services.training_plan import TrainingPlan

    TUNABLE_PARAMS["linear_svc_oof_calibrated"]["clf__max_iter"] = Tunable("int", low=1, high=2000)
    settings = load_settings()
    database = open_database(settings.database_url, migrate=True)
    plan = TrainingPlan(
        data_file=str(csv),
        data_path=str(csv),
        algorithm="linear_svc_oof_calibrated",
        params=params,
        grid={},
        include_base_data=False,
        include_feedback=False,
        activate=False,
    )
    with database.sessions() as session:
        job = TrainingJobService(session, settings).create(plan, source="cli", requested_by=None)
    job = execute_job(database.sessions, settings, job.job_id, cores=1)
    if job.status != "succeeded":
        raise SystemExit(f"training failed: {job.error}")
    with database.sessions() as session:
        newest = ModelRegistry(session, settings.model_dir).list()[0]
        timings = (newest.metrics or {}).get("timings")
    database.dispose()
    sys.stdout.write(json.dumps({"version": newest.version, "timings": timings}) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        run_job(Path(args.child[0]), json.loads(args.child[1]))
        return 0
    params = {
        "features__word__max_features": args.word_features,
        "features__char__max_features": args.char_features,
        "clf__max_iter": args.solver_passes,
    }
    with tempfile.TemporaryDirectory(prefix="garoupa-memory-") as scratch:
        workdir = args.workdir or Path(scratch)
        deployment = make_deployment(workdir, train_timeout=86_400, precision="float32")
        started = time.perf_counter()
        rows = synthetic.generate(args.categories, args.rows, args.seed)
        csv = workdir / "data" / "catalog.csv"
        synthetic.write_csv(rows, csv)
        del rows
        print(
            f"catalog: {args.rows:,} rows x {args.categories:,} categories "
            f"in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        env = {**deployment.env, "TRAINING_CORES": "1"}
        started = time.perf_counter()
        with subprocess.Popen(
            [sys.executable, __file__, "--child", str(csv), json.dumps(params)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as child:
            # A line a minute, so an hour-long run shows it is alive.
            while True:
                try:
                    out, err = child.communicate(timeout=args.heartbeat)
                    break
                except subprocess.TimeoutExpired:
                    print(f"training: {time.perf_counter() - started:.0f} s", flush=True)
        wall = time.perf_counter() - started
        # ru_maxrss is in KiB on Linux: the largest of the waited-for children's peaks.
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if child.returncode != 0:
            sys.stderr.write(err[-4000:])
            return 1
        outcome = json.loads(out.strip().splitlines()[-1])
    measured = {
        "categories": args.categories,
        "rows": args.rows,
        "params": params,
        "cores": 1,
        "wall_seconds": round(wall, 1),
        "peak_rss_mib": round(peak_mib),
        "stage_seconds": outcome["timings"],
    }
    print(json.dumps(measured, indent=2))
    if args.json:
        args.json.write_text(json.dumps(measured, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
