"""Train a product-category model, record it as a new version and (by default) activate it.

    python train.py                       # data/products.csv, default algorithm
    python train.py --data data/new.csv --algorithm logistic_regression --no-activate
    python train.py --cores 4                # the fits on 4 cores (default: TRAINING_CORES)

Running servers pick up an activated version within a few seconds. The job obeys
TRAINING_TIMEOUT_SECONDS and `DELETE /training/{job_id}` like an API job: its
heartbeat notices either and interrupts the run (best effort: a fit in C code
ends at its next return to Python).
"""

from __future__ import annotations

import _thread
import argparse
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.core.config import ConfigurationError, Settings, load_settings
from app.core.errors import Conflict, Unprocessable
from app.db.database import open_database
from app.db.models import TrainingJob
from app.ml.algorithms import ALGORITHMS, DEFAULT_ALGORITHM, DEFAULT_TEST_SIZE
from app.ml.dataset import SHIPPED_DATASET, DatasetError, read_csv
from app.ml.parallel import FitProgress
from app.ml.training import STAGES, TrainingError
from app.services.job_runner import execute_job
from app.services.training_jobs import TrainingJobService, mark_failed
from app.services.training_plan import TrainingPlan, split_params

# The bound TRAINING_CORES has (app/core/config.py).
MAX_CORES = 256


def parse_args(argv: list[str] | None, settings: Settings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="train.py",
        description="Train a model from a product_name,category CSV and register it as "
        "the next version (v1.0.0, v1.0.1, ...).",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=SHIPPED_DATASET,
        help="CSV with product_name and category columns (default: the shipped data/products.csv)",
    )
    parser.add_argument(
        "--algorithm",
        choices=ALGORITHMS,
        default=DEFAULT_ALGORITHM,
        help="classifier (default: %(default)s; docs/model.md compares them)",
    )
    parser.add_argument(
        "--test-size",
        type=float,
        default=DEFAULT_TEST_SIZE,
        help="share of rows held out for evaluation, stratified (default: %(default)s)",
    )
    parser.add_argument(
        "--no-refit",
        action="store_true",
        help="serve the pipeline fitted without the hold-out instead of refitting it on "
        "every row after the evaluation",
    )
    parser.add_argument(
        "--param",
        dest="params",
        action="append",
        type=_param,
        default=[],
        metavar="NAME=JSON",
        help="a hyper-parameter as POST /training/ takes it, e.g. "
        "features__char__max_features=200000 or clf__C=[0.5,1] (a list is searched); "
        "repeatable; only the allow-listed names (docs/api.md)",
    )
    parser.add_argument(
        "--cores",
        type=_cores,
        default=settings.training_cores,
        help="cores the independent fits run on (default: TRAINING_CORES, else all but one; "
        "ignored when TRAINING_CLUSTER names a Dask scheduler)",
    )
    parser.add_argument(
        "--no-activate",
        action="store_true",
        help="record the version without making it the one that serves",
    )
    return parser.parse_args(argv)


def _param(value: str) -> tuple[str, Any]:
    name, sep, raw = value.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{value!r} is not NAME=JSON")
    try:
        return name, json.loads(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name}: {raw!r} is not a JSON value") from None


def _cores(value: str) -> int:
    try:
        cores = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 1 <= cores <= MAX_CORES:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_CORES}")
    return cores


class StageDisplay:
    """One line per training stage with a spinner while it runs and its time when done."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks = {
            stage: progress.add_task(stage, total=1, start=False, visible=False) for stage in STAGES
        }
        self._current: str | None = None
        self._fits: TaskID | None = None

    def fits(self, fits: FitProgress) -> None:
        """Show the fits done of the total and the time the rest should take."""
        if not fits.total:
            return
        left = "" if fits.eta_seconds is None else f", about {_duration(fits.eta_seconds)} left"
        description = f"fits {fits.done}/{fits.total}{left}"
        if self._fits is None:
            self._fits = self._progress.add_task(description, total=fits.total)
        self._progress.update(self._fits, completed=fits.done, description=description)
        if fits.done >= fits.total:
            self._progress.stop_task(self._fits)

    def __call__(self, stage: str) -> None:
        self.finish()
        task = self._tasks[stage]
        self._progress.update(task, visible=True)
        self._progress.start_task(task)
        self._current = stage

    def finish(self, *, failed: bool = False) -> None:
        if self._current is not None:
            task = self._tasks[self._current]
            if failed:
                self._progress.update(task, description=f"{self._current} [red]failed")
            else:
                self._progress.update(task, completed=1)
            self._progress.stop_task(task)
            self._current = None


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


@contextmanager
def stage_display(console: Console) -> Iterator[StageDisplay]:
    progress = Progress(
        SpinnerColumn(finished_text="[green]✓"),
        TextColumn("{task.description:<16}"),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        display = StageDisplay(progress)
        try:
            yield display
        except BaseException:
            display.finish(failed=True)
            raise
        display.finish()


def metrics_tables(job: TrainingJob) -> list[Table]:
    m: dict[str, Any] = job.metrics or {}
    summary = Table(title=f"{job.produced_version} ({job.algorithm}) on the hold-out set")
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    summary.add_row("rows (train / test)", f"{m['train_rows']} / {m['n_samples']}")
    if m.get("refit"):
        summary.add_row("served model refitted on", f"all {m['fitted_rows']} rows")
    summary.add_row("categories", str(len(m["per_class"])))
    summary.add_row("accuracy", f"{m['accuracy']:.4f}")
    summary.add_row("macro-F1", f"{m['macro_f1']:.4f}")
    summary.add_row("weighted-F1", f"{m['weighted_f1']:.4f}")
    summary.add_row("calibration error (ECE, 15 bins)", f"{m['ece']:.4f}")
    if "in_scope_share" in m:
        summary.add_row("in scope (scope test)", f"{m['in_scope_share']:.1%}")
    if "review" in m:
        summary.add_row("review threshold (95 % precision)", f"{m['review']['threshold']:.2f}")
    per_class = Table(title="Per category")
    for column in ("category", "precision", "recall", "F1", "support"):
        per_class.add_column(column, justify="left" if column == "category" else "right")
    for label, row in sorted(m["per_class"].items()):
        per_class.add_row(
            label,
            f"{row['precision']:.3f}",
            f"{row['recall']:.3f}",
            f"{row['f1']:.3f}",
            str(row["support"]),
        )
    return [summary, per_class]


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        print(f"train.py: {exc}", file=sys.stderr)
        return 1
    args = parse_args(argv, settings)
    out = Console()
    err = Console(stderr=True)

    database = open_database(settings.database_url, migrate=True)
    sessions = database.sessions
    try:
        started = time.perf_counter()
        with stage_display(err) as display:
            display("load")
            # The API's allow-list and bounds, before any job is recorded.
            fixed, grid = split_params(args.algorithm, dict(args.params))
            # Checked here as well as in the job so bad data costs no job record.
            _, warnings = read_csv(args.data).prepare_for_training(args.test_size)
            for warning in warnings:
                err.print(f"[yellow]warning:[/yellow] {warning}")
            plan = TrainingPlan(
                data_file=str(args.data.resolve()),
                data_path=str(args.data),
                algorithm=args.algorithm,
                params=fixed,
                grid=grid,
                include_base_data=False,
                include_feedback=False,
                activate=not args.no_activate,
                test_size=args.test_size,
                refit=not args.no_refit,
            )
            with sessions() as session:
                # The same one-job-at-a-time rule as POST /training/.
                job = TrainingJobService(session, settings).create(
                    plan, source="cli", requested_by=None
                )
            try:
                job = execute_job(
                    sessions,
                    settings,
                    job.job_id,
                    progress=display,
                    on_abandoned=_thread.interrupt_main,
                    fit_progress=display.fits,
                    cores=args.cores,
                )
            except KeyboardInterrupt:
                # Ctrl-C, or the heartbeat saw the job cancelled or timed out.
                with sessions() as session:
                    mark_failed(session, job.job_id, "train.py was interrupted")
                    job = TrainingJobService(session, settings).get(job.job_id)
            if job.status != "succeeded":
                raise TrainingError(job.error or "training failed")
    except (DatasetError, TrainingError, Conflict, Unprocessable) as exc:
        print(f"train.py: {exc}", file=sys.stderr)
        return 1
    finally:
        database.dispose()

    for table in metrics_tables(job):
        out.print(table)
    state = "active" if job.activated else f"not activated ({job.message})"
    out.print(
        f"Saved {job.produced_version}: {job.data_rows} rows, "
        f"{time.perf_counter() - started:.1f} s, {state}."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
