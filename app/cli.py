"""Garoupa on the command line: `python -m app.cli score in.csv out.csv` scores a whole file.

The model is the registry's active version (or `--version`), loaded as a server
worker loads it, from the database DATABASE_URL names and the files under
MODEL_DIR (environment or `.env`, as for the server). Each input row gets the
answer `POST /predict/batch` would give, with the top three categories; rows the
API would refuse are reported in the `error` column. The output file appears only
when complete. Exit codes: 0 done, 1 refused or failed (the message says why),
2 wrong usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import SQLAlchemyError

from app.core.config import ConfigurationError, load_settings
from app.core.errors import GaroupaError
from app.core.metrics import setup_metrics
from app.db.database import open_database
from app.db.schema import SchemaNotCurrent
from app.ml.artifacts import ArtifactError
from app.services.bulk_scoring import (
    BulkLimits,
    BulkProgress,
    BulkScorer,
    BulkSummary,
    ProgressCallback,
    load_serving_model,
)
from app.services.models import ModelRegistry
from app.services.prediction import Predictions, PredictionService, review_threshold

_N = TypeVar("_N", int, float)

# Without a terminal, a progress line at most this often.
PLAIN_PROGRESS_SECONDS = 10.0


class CommandError(Exception):
    """A refusal to report on stderr with exit code 1."""


def _within(kind: Callable[[str], _N], low: _N, high: _N | None = None) -> Callable[[str], _N]:
    """An argparse type: a `kind` number of at least `low` (and at most `high`)."""

    def parse(text: str) -> _N:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        # Both comparisons are False for NaN, which is refused with the rest.
        if not (low <= value and (high is None or value <= high)):
            bounds = f"at least {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"must be {bounds}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The `python -m app.cli` parser with its subcommands."""
    parser = argparse.ArgumentParser(
        prog="python -m app.cli",
        description="Garoupa's offline tools. Settings come from the environment or .env.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    defaults = BulkLimits()
    score = commands.add_parser(
        "score",
        help="score every product name of a CSV file",
        description="Score every product name of a CSV file with a model version and write "
        "the results as CSV (row, product_name, predicted_category, prediction_score, "
        "needs_review, in_scope, top-3, error), in input order. The name is the "
        "product_name column when the first row is a header naming one, else the first "
        "column. Rows the API would refuse (empty, too long, not UTF-8) are reported in "
        "the error column and do not stop the run.",
    )
    score.add_argument("input", metavar="IN", type=Path, help="the CSV file of product names")
    score.add_argument(
        "output",
        metavar="OUT",
        type=Path,
        help="where to write the results; replaced only once they are complete",
    )
    score.add_argument(
        "--version",
        help="the model version to score with, e.g. v1.0.1 (default: the active one)",
    )
    score.add_argument(
        "--model-dir",
        type=Path,
        help="the folder of model artifacts (default: the MODEL_DIR setting)",
    )
    score.add_argument(
        "--min-score",
        type=_within(float, 0.0, 1.0),
        help="flag needs_review below this score, as the API's min_score does (default: "
        "the REVIEW_THRESHOLD setting, else the version's own threshold)",
    )
    score.add_argument(
        "--max-rows",
        type=_within(int, 1),
        help="refuse a file with more data rows than this (default: the MAX_BULK_ROWS "
        "setting, as for POST /predictions/bulk)",
    )
    score.add_argument(
        "--chunk-rows",
        type=_within(int, 1),
        default=defaults.chunk_rows,
        help="rows read and scored at a time (default: %(default)s)",
    )
    score.add_argument(
        "--cores",
        type=_within(int, 1, 256),
        help="worker processes to score on; 1 scores in this process (default: the "
        "BULK_CORES setting, else all but one of the CPUs this process may use)",
    )
    score.set_defaults(handler=_score)
    _add_score_dask(commands)
    return parser


def _score(args: argparse.Namespace) -> None:
    source: Path = args.input
    destination: Path = args.output
    if not source.exists():
        raise CommandError(f"input file not found: {source}")
    if not source.is_file():
        raise CommandError(f"input is not a file: {source}")
    if not destination.parent.is_dir():
        raise CommandError(f"output folder not found: {destination.parent}")
    if destination.is_dir():
        raise CommandError(f"output is a folder: {destination}")
    overrides = {} if args.model_dir is None else {"model_dir": args.model_dir}
    settings = load_settings(**overrides)
    # A reader of the registry: the schema is the server's to migrate (`make migrate`).
    with open_database(settings.database_url, migrate=False) as database:
        worker = PredictionService(database.sessions, settings.model_dir, setup_metrics())
        with database.sessions() as session:
            registry = ModelRegistry(session, settings.model_dir)
            try:
                model = load_serving_model(worker, registry, args.version)
            # What a worker's sync() survives when a version fails to load.
            except (ArtifactError, OSError, ValueError) as exc:
                raise CommandError(f"cannot load the model: {exc}") from exc
    threshold = review_threshold(
        args.min_score, settings, Predictions(model.version, [], model.review_threshold)
    )
    max_rows = settings.max_bulk_rows if args.max_rows is None else args.max_rows
    limits = BulkLimits(max_rows=max_rows, chunk_rows=args.chunk_rows)
    cores = settings.bulk_cores if args.cores is None else args.cores
    scorer = BulkScorer(model, threshold, limits, cores=cores)
    with progress_display(Console(stderr=True)) as progress:
        summary = scorer.score_file(source, destination, progress)
    _say(_summary_line(summary, destination))


def _summary_line(summary: BulkSummary, destination: Path) -> str:
    return (
        f"Scored {summary.rows:,} rows ({summary.bad_rows:,} bad) with {summary.model_version} "
        f"in {summary.seconds:.1f} s, {summary.rows_per_second:,.0f} rows/s: {destination}"
    )


def describe(progress: BulkProgress) -> str:
    """Rows, bad rows, pace and time left, in a few words."""
    text = (
        f"{progress.rows:,} rows, {progress.bad_rows:,} bad, {progress.rows_per_second:,.0f} rows/s"
    )
    eta = progress.eta_seconds
    return text if eta is None else f"{text}, about {eta:,.0f} s left"


@contextmanager
def progress_display(console: Console) -> Iterator[ProgressCallback]:
    """A progress bar on a terminal; otherwise a plain line now and then."""
    if not console.is_terminal:
        yield _PlainProgress()
        return
    bar = Progress(
        TextColumn("scoring"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
    )
    with bar:
        task = bar.add_task("scoring", total=None, detail="")

        def update(progress: BulkProgress) -> None:
            bar.update(
                task,
                completed=progress.bytes_read,
                total=progress.total_bytes,
                detail=describe(progress),
            )

        yield update


class _PlainProgress:
    """Progress as log-like lines on stderr, for pipes and files."""

    def __init__(self) -> None:
        self._last = time.monotonic()

    def __call__(self, progress: BulkProgress) -> None:
        now = time.monotonic()
        if now - self._last >= PLAIN_PROGRESS_SECONDS:
            self._last = now
            _say(f"progress: {describe(progress)}", err=True)


def _add_score_dask(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defaults = BulkLimits()
    command = commands.add_parser(
        "score-dask",
        help="score a folder of CSV files on a Dask cluster, one file per task",
        description="Score every *.csv file of IN_DIR on a Dask cluster, each file as the "
        "score command would, into OUT_DIR/NAME.scored.csv for each IN_DIR/NAME.csv (same "
        "columns, input order). "
        "The model version is loaded here and shipped to every worker once; the workers "
        "need the same Garoupa release and must see IN_DIR and OUT_DIR at the same paths.",
    )
    command.add_argument("input", metavar="IN_DIR", type=Path, help="the folder of CSV files")
    command.add_argument(
        "output", metavar="OUT_DIR", type=Path, help="the folder to write the results to"
    )
    where = command.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="the Dask scheduler to use, e.g. tcp://10.0.0.5:8786 (default: a local cluster)",
    )
    where.add_argument(
        "--workers",
        type=_within(int, 1, 256),
        default=1,
        help="worker processes of the local cluster, one core each (default: %(default)s)",
    )
    command.add_argument("--version", help="the model version (default: the active one)")
    command.add_argument(
        "--model-dir",
        type=Path,
        help="the folder of model artifacts (default: the MODEL_DIR setting)",
    )
    command.add_argument(
        "--min-score",
        type=_within(float, 0.0, 1.0),
        help="flag needs_review below this score (default: as the score command)",
    )
    command.add_argument(
        "--max-rows",
        type=_within(int, 1),
        default=defaults.max_rows,
        help="refuse a file with more data rows than this (default: %(default)s)",
    )
    command.add_argument(
        "--chunk-rows",
        type=_within(int, 1),
        default=defaults.chunk_rows,
        help="rows read and scored at a time (default: %(default)s)",
    )
    command.set_defaults(handler=_score_dask)


def _score_dask(args: argparse.Namespace) -> None:
    # Imported here: Dask adds about 0.4 s to the start of every other command.
    from app.services.distributed_scoring import (
        cluster_client,
        load_partition_scorer,
        partition_files,
        score_partitions,
    )

    source: Path = args.input
    destination: Path = args.output
    if not source.is_dir():
        raise CommandError(f"input folder not found: {source}")
    if not destination.is_dir():
        raise CommandError(f"output folder not found: {destination}")
    if destination.resolve() == source.resolve():
        # The next run would take this run's outputs for partitions.
        raise CommandError("the output folder must not be the input folder")
    partitions = partition_files(source)
    if not partitions:
        raise CommandError(f"no .csv files in {source}")
    overrides = {} if args.model_dir is None else {"model_dir": args.model_dir}
    limits = BulkLimits(max_rows=args.max_rows, chunk_rows=args.chunk_rows)
    try:
        scorer = load_partition_scorer(
            load_settings(**overrides), args.version, args.min_score, limits
        )
    # What a worker's sync() survives when a version fails to load.
    except (ArtifactError, OSError, ValueError) as exc:
        raise CommandError(f"cannot load the model: {exc}") from exc
    started = time.perf_counter()
    with cluster_client(args.scheduler, args.workers) as client:
        workers = len(client.scheduler_info()["workers"])
        results = score_partitions(client, scorer, partitions, destination)
    seconds = time.perf_counter() - started
    rows = sum(result.summary.rows for result in results)
    bad_rows = sum(result.summary.bad_rows for result in results)
    _say(
        f"Scored {rows:,} rows ({bad_rows:,} bad) in {len(results):,} files with "
        f"{scorer.model.version} on {workers} workers in {seconds:.1f} s, "
        f"{rows / seconds:,.0f} rows/s: {destination}"
    )


def _say(text: str, *, err: bool = False) -> None:
    # The command's output to its user: the one place this module prints.
    print(text, file=sys.stderr if err else sys.stdout, flush=True)  # noqa: T201


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so a half-written output is removed.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; 0 on success, 1 on a refused or failed run, 130 when interrupted."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        args.handler(args)
    except (CommandError, GaroupaError, SchemaNotCurrent, ConfigurationError) as exc:
        _say(f"error: {exc}", err=True)
        return 1
    except SQLAlchemyError as exc:
        _say(f"error: database unavailable ({type(exc).__name__})", err=True)
        return 1
    except OSError as exc:
        _say(f"error: {exc}", err=True)
        return 1
    except KeyboardInterrupt:
        _say("interrupted: the output was not written", err=True)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
