"""Training time, peak memory and hold-out macro-F1 against rows, categories and cores.

    python benchmarks/training_scaling.py --points 20:20000,133:50000,1000:50000 --cores 1 2 \\
        --json training_scaling.json --plot docs/img/training_scaling.png

Each point (CATEGORIES:ROWS) is a deterministic synthetic catalogue
(`benchmarks/synthetic.py`, the same seed gives the same rows on any machine).
For every core count it is trained by `train.py --data CSV` as a subprocess in a
fresh deployment (its own SQLite database and model directory, so no run
compares itself with another's active version), with TRAINING_CORES=N and one
BLAS/OpenMP thread in its environment. Measured per run:

* wall time of the whole train.py process, and its CPU time (user + system of
  the reaped child, from getrusage), whose ratio shows how many cores it used;
* peak RSS of its process tree, sampled every second (a peak shorter than
  that can be missed);
* hold-out macro-F1, accuracy, row counts and per-stage timings, read from the
  version's metrics in the deployment's database through the model registry
  (train.py has no machine-readable output).

Derived: speed-up against the same point's 1-core run, of the whole run and
of the "fit + calibrate" stage; the per-core rate of that stage in
train rows x categories per core-second (liblinear's one-vs-rest cost is linear
in both); and, from the largest point with a 1-core run, an extrapolation to
1,000,000 rows x 1,000 categories on 16 cores. The extrapolation is a model, not
a measurement, and is printed and stored as "extrapolated": every stage is taken
as linear in rows x categories, the fit stages ("fit + calibrate", "refit") as
dividing by the cores and the rest as serial. It is given twice: with a linear
speed-up, and bounded by the default classifier's independent fits (5 fold
fits on 4/5 of the rows and one final fit on all of them, so the stage can
never run faster than its longest fit: at most 5x, 1.92x on 2 cores).

Every wait is bounded (`--train-timeout`); a run that fails is recorded with its
error and the next one runs; `--json` is rewritten after each run, so an
interrupted benchmark keeps what it measured. Progress goes to stderr, the table
and the extrapolation to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.ml.algorithms import ALGORITHMS, DEFAULT_ALGORITHM, DEFAULT_TEST_SIZE  # noqa: E402
from benchmarks import synthetic  # noqa: E402
from benchmarks.scaling_bench import (  # noqa: E402
    MB,
    Deployment,
    log,
    make_deployment,
    require_matplotlib,
    run_bounded,
)

DEFAULT_POINTS = "20:10000,133:50000,1000:100000"
FIT_STAGE = "fit + calibrate"
# Stages whose fits run in parallel (app/ml/parallel.py); the others are serial.
PARALLEL_STAGES = (FIT_STAGE, "refit")
# Issue 17's target: 1,000,000 names x 1,000 categories within 15 minutes on 16 cores.
TARGET_ROWS = 1_000_000
TARGET_CATEGORIES = 1000
TARGET_CORES = 16
TARGET_SECONDS = 15 * 60
TARGET_SPEEDUP_2_CORES = 1.7
# Threaded BLAS/OpenMP inside a fit would make the cores count meaningless.
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# Metrics copied from the version's record (per_class is left out: 1,000 rows of it).
RECORDED = ("macro_f1", "accuracy", "weighted_f1", "ece", "train_rows", "fitted_rows")


def machine_cores() -> int:
    """CPUs this process may run on (its affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def parse_points(text: str) -> list[tuple[int, int]]:
    """`20:10000,133:50000` -> [(20, 10000), (133, 50000)]."""
    points = []
    for item in text.split(","):
        categories, _, rows = item.strip().partition(":")
        try:
            point = (int(categories), int(rows))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bad point {item!r}: expected CATEGORIES:ROWS, e.g. 133:50000"
            ) from None
        # Checked here so a bad point fails at once, not after the others have run.
        if point[0] < 2 or point[1] < point[0] * synthetic.MIN_ROWS_PER_CATEGORY:
            raise argparse.ArgumentTypeError(
                f"bad point {item!r}: need at least 2 categories and "
                f"{synthetic.MIN_ROWS_PER_CATEGORY} rows per category"
            )
        points.append(point)
    return points


# --------------------------------------------------------------------------- one run


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def recorded_metrics(deployment: Deployment) -> dict[str, Any]:
    """The metrics of the version train.py registered in `deployment`, via the model registry."""
    from app.db.database import open_database
    from app.services.models import ModelRegistry

    with (
        open_database(deployment.env["DATABASE_URL"], migrate=False) as database,
        database.sessions() as session,
    ):
        versions = ModelRegistry(session, deployment.model_dir).list()
        if not versions:
            raise RuntimeError("train.py succeeded but registered no version")
        newest = versions[0]
        metrics: dict[str, Any] = dict(newest.metrics or {})
        version = newest.version
    found: dict[str, Any] = {"version": version}
    found.update({key: metrics[key] for key in RECORDED if key in metrics})
    found["test_rows"] = metrics.get("n_samples")
    found["classes"] = len(metrics["per_class"]) if "per_class" in metrics else None
    found["timings"] = metrics.get("timings") or {}
    return found


def run_training(
    csv_path: Path,
    cores: int,
    workdir: Path,
    *,
    algorithm: str | None,
    train_timeout: float,
    heartbeat: float,
) -> dict[str, Any]:
    """Measurements of train.py on `csv_path` with `cores` cores, in a fresh deployment."""
    deployment = make_deployment(workdir, train_timeout, "float64")
    env = {**deployment.env, **SINGLE_THREAD_ENV, "TRAINING_CORES": str(cores)}
    # Empty is ignored by the settings: a TRAINING_CLUSTER in the caller's environment
    # would send the fits to Dask and make the cores count meaningless.
    env["TRAINING_CLUSTER"] = ""
    deployment = dataclasses.replace(deployment, env=env)
    command = [sys.executable, str(ROOT / "train.py"), "--data", str(csv_path)]
    if algorithm is not None:
        command += ["--algorithm", algorithm]
    log_file = workdir / "train.log"
    cpu_before = _children_cpu_seconds()
    code, wall, peak = run_bounded(
        command,
        deployment,
        # A little past the job's own TRAINING_TIMEOUT_SECONDS, so that the job
        # normally fails itself, with its own message, before it is killed.
        timeout=train_timeout + 60,
        label=f"train.py ({cores} core{'s' if cores != 1 else ''})",
        log_file=log_file,
        heartbeat=heartbeat,
    )
    # Popen reaped the child, so the delta is exactly its (and its reaped descendants') CPU.
    cpu = _children_cpu_seconds() - cpu_before
    run: dict[str, Any] = {"wall_s": wall, "cpu_s": cpu, "peak_rss_bytes": peak}
    if code != 0:
        lines = [line for line in log_file.read_text(errors="replace").splitlines() if line.strip()]
        last = lines[-1][:300] if lines else "(no output)"
        raise RunFailed(f"train.py exited with {code}: {last}", run)
    run.update(recorded_metrics(deployment))
    return run


class RunFailed(RuntimeError):
    """A run failed after measuring something; `partial` keeps what it measured."""

    def __init__(self, message: str, partial: dict[str, Any]) -> None:
        super().__init__(message)
        self.partial = partial


# --------------------------------------------------------------------------- derived


def fit_speedup_limit(cores: int, folds: int = 5) -> float:
    """Best speed-up of the calibrated fit stage on `cores` cores, from its fits alone.

    The stage is `folds` fold fits on (folds-1)/folds of the rows plus one final
    fit on all of them (app/ml/calibration.py), started longest first as
    `run_fits` does; with cost linear in rows the total is `folds` units and
    the makespan of that greedy schedule bounds the speed-up.
    """
    fits = [1.0] + [(folds - 1) / folds] * folds
    free = [0.0] * max(1, cores)
    for cost in fits:
        heapq.heappush(free, heapq.heappop(free) + cost)
    return sum(fits) / max(free)


def _work(run: dict[str, Any]) -> float | None:
    """Train rows x categories of a finished run: the unit the fit stage's cost grows with."""
    if run.get("train_rows") is None:
        return None
    return float(run["train_rows"]) * float(run.get("classes") or run["categories"])


def derive(runs: list[dict[str, Any]]) -> None:
    """Add speed-ups against the same point's 1-core run and per-core rates, in place."""
    ones = {
        (r["categories"], r["rows_requested"]): r
        for r in runs
        if r["cores"] == 1 and "error" not in r
    }
    for run in runs:
        if "error" in run:
            continue
        fit_s = run.get("timings", {}).get(FIT_STAGE)
        work = _work(run)
        run["fit_s"] = fit_s
        run["cpu_per_wall"] = run["cpu_s"] / run["wall_s"] if run["wall_s"] > 0 else None
        run["fit_rate_per_core"] = (
            work / (fit_s * run["cores"]) if work is not None and fit_s else None
        )
        base = ones.get((run["categories"], run["rows_requested"]))
        run["speedup_wall"] = base["wall_s"] / run["wall_s"] if base else None
        base_fit = base.get("timings", {}).get(FIT_STAGE) if base else None
        run["speedup_fit"] = base_fit / fit_s if base_fit and fit_s else None
        run["speedup_fit_limit"] = fit_speedup_limit(run["cores"])


def extrapolate(runs: list[dict[str, Any]], algorithm: str) -> dict[str, Any] | None:
    """1,000,000 x 1,000 on 16 cores from the largest point's 1-core run (a model, labelled so)."""
    ones = [
        r
        for r in runs
        if r["cores"] == 1 and "error" not in r and _work(r) and r.get("fit_rate_per_core")
    ]
    if not ones:
        return None
    base = max(ones, key=lambda r: _work(r) or 0.0)
    base_work = _work(base) or 1.0
    target_train_rows = round(TARGET_ROWS * (1 - DEFAULT_TEST_SIZE))
    target_work = float(target_train_rows) * TARGET_CATEGORIES
    scale = target_work / base_work
    parallel_s = sum(base["timings"].get(stage, 0.0) for stage in PARALLEL_STAGES)
    serial_s = max(0.0, base["wall_s"] - parallel_s)
    fit_s = target_work / base["fit_rate_per_core"]
    # The fold bound holds for the default calibrated LinearSVC only; other
    # algorithms have one fit per stage, which no number of cores divides.
    limit = fit_speedup_limit(TARGET_CORES) if algorithm == DEFAULT_ALGORITHM else 1.0
    linear_s = scale * (serial_s + parallel_s / TARGET_CORES)
    bounded_s = scale * (serial_s + parallel_s / limit)
    return {
        "label": "extrapolated",
        "rows": TARGET_ROWS,
        "train_rows": target_train_rows,
        "categories": TARGET_CATEGORIES,
        "cores": TARGET_CORES,
        "from": {"categories": base["categories"], "rows": base["rows"], "cores": 1},
        "scale": scale,
        "fit_rate_per_core": base["fit_rate_per_core"],
        "fit_s_linear": fit_s / TARGET_CORES,
        "fit_s_fold_bound": fit_s / limit,
        "run_s_linear": linear_s,
        "run_s_fold_bound": bounded_s,
        "fit_speedup_limit": limit,
        "target_s": TARGET_SECONDS,
        "meets_target_linear": linear_s <= TARGET_SECONDS,
        "meets_target_fold_bound": bounded_s <= TARGET_SECONDS,
    }


# --------------------------------------------------------------------------- report


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def markdown_table(runs: list[dict[str, Any]]) -> str:
    """One row per (point, cores)."""
    header = [
        "categories",
        "rows",
        "cores",
        "wall s",
        "fit s",
        "refit s",
        "CPU/wall",
        "peak RSS MiB",
        "macro-F1",
        "speed-up wall",
        "speed-up fit (limit)",
        "fit rate / core-s",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for r in runs:
        if "error" in r:
            cells = [str(r["categories"]), f"{r['rows_requested']:,}", str(r["cores"])]
            cells += [f"failed: {r['error']}"] + [""] * (len(header) - 4)
            lines.append("| " + " | ".join(cells) + " |")
            continue
        limit = f" ({r['speedup_fit_limit']:.2f})" if r["cores"] > 1 else ""
        cells = [
            str(r.get("classes") or r["categories"]),
            f"{r['rows']:,}",
            str(r["cores"]),
            f"{r['wall_s']:.1f}",
            _num(r.get("fit_s"), ".1f"),
            _num(r["timings"].get("refit"), ".1f"),
            _num(r.get("cpu_per_wall"), ".2f"),
            f"{r['peak_rss_bytes'] / MB:,.0f}",
            _num(r.get("macro_f1"), ".3f"),
            _num(r.get("speedup_wall"), ".2f"),
            _num(r.get("speedup_fit"), ".2f") + limit,
            _num(r.get("fit_rate_per_core"), ",.0f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def extrapolation_text(found: dict[str, Any] | None) -> str:
    """The extrapolation in two labelled lines, or why there is none."""
    if found is None:
        return "extrapolated: none (no successful 1-core run with a fit-stage timing)"
    source = found["from"]
    head = (
        f"extrapolated (not measured) to {found['rows']:,} rows x {found['categories']:,} "
        f"categories on {found['cores']} cores, from the {source['categories']} x "
        f"{source['rows']:,} 1-core run (x{found['scale']:,.0f}, every stage linear in "
        f"rows x categories; fit rate {found['fit_rate_per_core']:,.0f} per core-second):"
    )
    verdict = {True: "within", False: "over"}
    return "\n".join(
        [
            head,
            f"  linear speed-up:        fit stage {found['fit_s_linear'] / 60:,.1f} min, "
            f"whole run {found['run_s_linear'] / 60:,.1f} min "
            f"({verdict[found['meets_target_linear']]} the 15-minute target)",
            f"  bounded by the fits ({found['fit_speedup_limit']:.2f}x at most): fit stage "
            f"{found['fit_s_fold_bound'] / 60:,.1f} min, whole run "
            f"{found['run_s_fold_bound'] / 60:,.1f} min "
            f"({verdict[found['meets_target_fold_bound']]} the 15-minute target)",
        ]
    )


def plot(runs: list[dict[str, Any]], found: dict[str, Any] | None, path: Path) -> None:
    """Time, speed-up, peak memory and macro-F1 against rows x categories and cores."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    import matplotlib.pyplot as plt

    done = [r for r in runs if "error" not in r and _work(r)]
    if not done:
        log("nothing to plot: every run failed")
        return
    cores = sorted({r["cores"] for r in done})
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    time_ax, speed_ax, memory_ax, f1_ax = axes[0][0], axes[0][1], axes[1][0], axes[1][1]
    for n in cores:
        mine = sorted((r for r in done if r["cores"] == n), key=lambda r: _work(r) or 0.0)
        x = [_work(r) or 0.0 for r in mine]
        label = f"{n} core{'s' if n != 1 else ''}"
        (line,) = time_ax.plot(x, [r["wall_s"] for r in mine], "o-", label=f"{label}, train.py")
        fit = [r.get("fit_s") or float("nan") for r in mine]
        time_ax.plot(x, fit, "s--", color=line.get_color(), label=f"{label}, fit stage")
        memory_ax.plot(x, [r["peak_rss_bytes"] / MB for r in mine], "o-", label=label)
        f1_ax.plot(x, [r.get("macro_f1") or float("nan") for r in mine], "o-", label=label)
    if found is not None:
        time_ax.plot(
            [found["train_rows"] * found["categories"]] * 2,
            [found["run_s_linear"], found["run_s_fold_bound"]],
            "k^:",
            label=f"extrapolated, {found['cores']} cores (linear / fold-bound)",
        )
        time_ax.axhline(TARGET_SECONDS, color="grey", lw=0.8, ls=":", label="15-minute target")
    time_ax.set_xscale("log")
    time_ax.set_yscale("log")
    time_ax.set_ylabel("seconds")
    time_ax.set_title("Training time")

    points = sorted({(r["categories"], r["rows"]) for r in done if r.get("speedup_wall")})
    for categories, rows in points:
        mine = sorted(
            (r for r in done if (r["categories"], r["rows"]) == (categories, rows)),
            key=lambda r: r["cores"],
        )
        speed_ax.plot(
            [r["cores"] for r in mine],
            [r.get("speedup_fit") or float("nan") for r in mine],
            "o-",
            label=f"{categories} x {rows:,}, fit stage",
        )
        speed_ax.plot(
            [r["cores"] for r in mine],
            [r["speedup_wall"] for r in mine],
            "s:",
            label=f"{categories} x {rows:,}, train.py",
        )
    ideal = list(range(1, max(cores) + 1))
    speed_ax.plot(ideal, ideal, color="grey", lw=0.8, label="linear")
    speed_ax.plot(ideal, [fit_speedup_limit(n) for n in ideal], "k--", lw=0.8, label="fold bound")
    if 2 in cores:
        speed_ax.plot([2], [TARGET_SPEEDUP_2_CORES], "r*", label="target on 2 cores")
    speed_ax.set_xlabel("cores (TRAINING_CORES)")
    speed_ax.set_ylabel("speed-up vs 1 core")
    speed_ax.set_title("Speed-up")

    memory_ax.set_ylabel("peak RSS of train.py (MiB)")
    memory_ax.set_title("Training memory")
    f1_ax.set_ylabel("hold-out macro-F1")
    f1_ax.set_title("Quality")
    for ax in (memory_ax, f1_ax):
        ax.set_xscale("log")
    for ax in (time_ax, memory_ax, f1_ax):
        ax.set_xlabel("train rows x categories")
    for row in axes:
        for ax in row:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- main


def _write_json(
    path: Path, runs: list[dict[str, Any]], args: argparse.Namespace, started: str
) -> None:
    payload = {
        "started_at": started,
        "machine_cores": machine_cores(),
        "algorithm": args.algorithm or DEFAULT_ALGORITHM,
        "seed": args.seed,
        "runs": runs,
        "extrapolation": extrapolate(runs, args.algorithm or DEFAULT_ALGORITHM),
    }
    # Written whole, then renamed: an interruption never leaves half a file.
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(payload, indent=2))
    os.replace(partial, path)


def main(argv: Sequence[str] | None = None) -> int:
    """Train every (point, cores), print the table and extrapolation, write --json and --plot."""
    parser = argparse.ArgumentParser(
        description="Training time, peak memory and hold-out macro-F1 against rows, "
        "categories and cores (TRAINING_CORES), on synthetic catalogues."
    )
    parser.add_argument(
        "--points",
        type=parse_points,
        default=parse_points(DEFAULT_POINTS),
        help=f"comma-separated CATEGORIES:ROWS (default {DEFAULT_POINTS})",
    )
    parser.add_argument(
        "--cores",
        type=int,
        nargs="+",
        help="TRAINING_CORES values to train each point with "
        f"(default: 1, 2 and this machine's {machine_cores()})",
    )
    parser.add_argument("--json", type=Path, help="write every measurement here (JSON)")
    parser.add_argument("--plot", type=Path, help="draw the curves into this PNG (matplotlib)")
    parser.add_argument(
        "--seed", type=int, default=synthetic.DEFAULT_SEED, help="generator seed (default 0)"
    )
    parser.add_argument(
        "--train-timeout",
        type=float,
        default=3600,
        help="seconds one train.py run may take (default %(default)s)",
    )
    parser.add_argument(
        "--algorithm",
        choices=ALGORITHMS,
        help="train.py --algorithm (default: train.py's, the calibrated LinearSVC)",
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        default=30,
        help="seconds between progress lines of a long run (default %(default)s)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep every run's deployment (CSV, database, models, train.log) under this "
        "directory instead of a deleted temporary one",
    )
    args = parser.parse_args(argv)
    cores = sorted(set(args.cores or [1, 2, machine_cores()]))
    if cores[0] < 1:
        parser.error("--cores must be at least 1")
    if args.train_timeout < 1:
        parser.error("--train-timeout must be at least 1 second")
    if args.plot is not None:
        require_matplotlib()

    started = datetime.now(UTC).isoformat(timespec="seconds")
    log(f"{len(args.points)} point(s) x cores {cores} on a {machine_cores()}-core machine")
    runs: list[dict[str, Any]] = []
    for categories, rows in args.points:
        tag = f"[{categories}:{rows}]"
        with _workdir(args.workdir, f"{categories}x{rows}") as directory:
            csv_path = directory / "catalogue.csv"
            log(f"{tag} generate")
            t = time.perf_counter()
            generated = 0
            generate_error: str | None = None
            try:
                made = synthetic.generate(categories, rows, args.seed)
                synthetic.write_csv(made, csv_path)
                generated = len(made)
            except (ValueError, OSError) as exc:
                generate_error = f"generation failed: {exc}"
            generate_s = time.perf_counter() - t
            log(f"{tag}   {generated:,} rows in {generate_s:.1f} s")
            for n in cores:
                run: dict[str, Any] = {
                    "categories": categories,
                    "rows_requested": rows,
                    "rows": generated,
                    "generate_s": generate_s,
                    "cores": n,
                }
                if generate_error is not None:
                    run["error"] = generate_error
                else:
                    log(f"{tag} train with TRAINING_CORES={n}")
                    run_dir = directory / f"cores-{n}"
                    run_dir.mkdir()
                    try:
                        run.update(
                            run_training(
                                csv_path,
                                n,
                                run_dir,
                                algorithm=args.algorithm,
                                train_timeout=args.train_timeout,
                                heartbeat=args.heartbeat,
                            )
                        )
                        log(
                            f"{tag}   {run['wall_s']:.1f} s, peak RSS "
                            f"{run['peak_rss_bytes'] / MB:,.0f} MiB, "
                            f"macro-F1 {_num(run.get('macro_f1'), '.3f')}"
                        )
                    except RunFailed as exc:
                        run.update(exc.partial, error=str(exc))
                    except Exception as exc:  # one broken run must not lose the others
                        run["error"] = f"{type(exc).__name__}: {exc}"
                    if "error" in run:
                        log(f"{tag}   failed: {run['error']}")
                runs.append(run)
                derive(runs)
                if args.json is not None:
                    _write_json(args.json, runs, args, started)

    found = extrapolate(runs, args.algorithm or DEFAULT_ALGORITHM)
    print(markdown_table(runs))
    print()
    print(extrapolation_text(found))
    if args.json is not None:
        log(f"wrote {args.json}")
    if args.plot is not None:
        plot(runs, found, args.plot)
        log(f"wrote {args.plot}")
    return 0 if all("error" not in r for r in runs) else 1


@contextmanager
def _workdir(parent: Path | None, name: str) -> Iterator[Path]:
    """A point's directory: under --workdir (kept, emptied first) or a deleted temporary one."""
    if parent is None:
        with tempfile.TemporaryDirectory(prefix=f"training-scaling-{name}-") as temp:
            yield Path(temp)
        return
    path = parent / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    yield path


if __name__ == "__main__":
    raise SystemExit(main())
