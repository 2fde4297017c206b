"""Scoring a partitioned catalogue on a Dask cluster, each partition as `app.cli score` would.

A partition is one CSV file of product names. The driver loads a model version
exactly as a server worker does (`load_serving_model`), wraps it with the review
threshold `/predict/batch` would apply in a `PartitionScorer`, and ships that
object to every worker once (`Client.scatter(..., broadcast=True)`); each task
then receives a reference to the worker's copy, not a pickle of its own. A task
scores one file with `BulkScorer` (so `score_chunk`, the bulk scorer's and hence
the API's answer for each name) and writes `<stem>.scored.csv` beside the other
outputs, in input order, atomically. Inputs and outputs are paths every worker
sees (a shared volume); a task moves no names through the scheduler.

Dask distributed rather than Spark: the scorer is pure Python and NumPy, so a
Python-only engine runs it without a JVM or a second serialisation layer, and
`LocalCluster` runs the same code in a test. docs/deployment.md has the reasons
and the measured sizing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from distributed import Client, LocalCluster

from app.core.config import Settings
from app.core.errors import GaroupaError
from app.core.metrics import setup_metrics
from app.db.database import open_database
from app.ml.fast_path import FAST_PATH_TOLERANCE
from app.services.bulk_scoring import (
    BulkLimits,
    BulkScorer,
    BulkSummary,
    InputRow,
    OutputRow,
    load_serving_model,
    score_chunk,
)
from app.services.models import ModelRegistry
from app.services.prediction import (
    Predictions,
    PredictionService,
    ServingModel,
    review_threshold,
)

logger = logging.getLogger(__name__)

OUTPUT_SUFFIX = ".scored.csv"
# Names every worker scores before its partition and compares with the driver's
# answers: a worker on other code or another NumPy would otherwise unpickle the
# scorer without complaint and answer differently from the API.
PROBE_NAMES = (
    "susu ultra coklat 250ml",
    "indomie goreng 85g",
    "sabun cuci piring 800ml",
    "qwxz vvkj plorft",
)
# A lost worker's partitions run again elsewhere: outputs are atomic and the same
# on every run, so a retry cannot leave half a file or a different one.
TASK_RETRIES = 2
WORKER_WAIT_SECONDS = 60.0


class WorkerMismatch(GaroupaError):
    """A worker scored the probe names differently from the driver: it runs other code."""


@dataclass(frozen=True)
class PartitionResult:
    """One partition: where it was read from and written to, and what its run did."""

    source: Path
    destination: Path
    summary: BulkSummary


@dataclass(frozen=True)
class PartitionScorer:
    """A model version and the review threshold the API applies, as one picklable object.

    Holds the `ServingModel` itself (its stored scorer's arrays travel as plain
    arrays, about 8.5 MB for the shipped model), so a worker needs neither the
    database nor the model folder: only the same Garoupa code as the driver.
    """

    model: ServingModel
    review_threshold: float
    limits: BulkLimits = field(default_factory=BulkLimits)
    # PROBE_NAMES as scored where the object was built; see check().
    probe: tuple[OutputRow, ...] = ()

    @classmethod
    def build(
        cls, model: ServingModel, threshold: float, limits: BulkLimits | None = None
    ) -> PartitionScorer:
        """A scorer of `model` with `threshold`, carrying its own answers to the probe names."""
        unchecked = cls(model, threshold, limits or BulkLimits())
        return replace(unchecked, probe=tuple(unchecked.score_names(PROBE_NAMES)))

    def score_rows(self, rows: Sequence[InputRow]) -> list[OutputRow]:
        """The output rows of `rows`, in order: what `app.cli score` writes for them."""
        return score_chunk(self.model, rows, self.review_threshold)

    def score_names(self, names: Sequence[str]) -> list[OutputRow]:
        """`score_rows` of names held in memory, numbered from 1."""
        return self.score_rows([InputRow(number, name) for number, name in enumerate(names, 1)])

    def score_file(self, source: Path, destination: Path) -> BulkSummary:
        """Score one CSV file into `destination`, which appears only once complete."""
        return BulkScorer(self.model, self.review_threshold, self.limits).score_file(
            source, destination
        )

    def check(self) -> None:
        """WorkerMismatch unless this process scores the probe names as the builder did."""
        if not self.probe:
            return
        for expected, got in zip(self.probe, self.score_names(PROBE_NAMES), strict=True):
            if not _same_row(expected, got):
                raise WorkerMismatch(
                    f"a worker scored {expected[1]!r} as {got[2:6]} where the driver scored "
                    f"{expected[2:6]}: run the same Garoupa release and libraries everywhere"
                )


def _same_row(expected: OutputRow, got: OutputRow) -> bool:
    # Scores are compared to the fast path's own tolerance: another CPU may round
    # the last bits of a sum differently; anything more is a different scorer.
    if len(expected) != len(got):
        return False
    for a, b in zip(expected, got, strict=True):
        if isinstance(a, float) and isinstance(b, float):
            if not math.isclose(a, b, rel_tol=0.0, abs_tol=FAST_PATH_TOLERANCE):
                return False
        elif a != b:
            return False
    return True


def load_partition_scorer(
    settings: Settings,
    version: str | None = None,
    min_score: float | None = None,
    limits: BulkLimits | None = None,
) -> PartitionScorer:
    """`version` (default: the active one) loaded as a server worker loads it, with the
    threshold `/predict/batch` would apply (`min_score`, else REVIEW_THRESHOLD, else the
    version's own).

    ModelNotReady when no version is active; ModelVersionNotFound for an unknown one;
    ArtifactError when its files are missing or altered.
    """
    # A reader of the registry: the schema is the server's to migrate.
    with open_database(settings.database_url, migrate=False) as database:
        loader = PredictionService(database.sessions, settings.model_dir, setup_metrics())
        with database.sessions() as session:
            registry = ModelRegistry(session, settings.model_dir)
            model = load_serving_model(loader, registry, version)
    threshold = review_threshold(
        min_score, settings, Predictions(model.version, [], model.review_threshold)
    )
    return PartitionScorer.build(model, threshold, limits)


def partition_files(folder: Path) -> list[Path]:
    """The partitions of a catalogue folder: its `*.csv` files, by name; hidden ones skipped."""
    return sorted(
        path for path in folder.glob("*.csv") if path.is_file() and not path.name.startswith(".")
    )


def output_path(out_dir: Path, source: Path) -> Path:
    """Where a partition's results go: `<out_dir>/<stem>.scored.csv`."""
    return out_dir / f"{source.stem}{OUTPUT_SUFFIX}"


def score_partitions(
    client: Client, scorer: PartitionScorer, sources: Sequence[Path], out_dir: Path
) -> list[PartitionResult]:
    """Score each file of `sources` on the cluster into `out_dir`; results in `sources` order.

    Every worker must see the paths at the same absolute place (a shared volume).
    The scorer is scattered to every worker once; each task gets a reference to it.
    Raises the first task's error (WorkerMismatch, TooManyRows, OSError, ...) once
    the others are cancelled; the outputs already complete stay.
    """
    # Absolute: a worker resolves a relative path in its own working directory.
    sources = [source.absolute() for source in sources]
    destinations = [output_path(out_dir.absolute(), source) for source in sources]
    if len(set(destinations)) != len(destinations):
        raise ValueError("two partitions would write the same output file")
    # hash=False: a random key, so dask does not tokenize (walk) the model's arrays.
    shipped = client.scatter(scorer, broadcast=True, hash=False)
    try:
        futures = client.map(
            _score_partition,
            sources,
            destinations,
            scorer=shipped,
            # Each call writes a file: never skipped as a repeat of an earlier one.
            pure=False,
            retries=TASK_RETRIES,
        )
        try:
            summaries: list[BulkSummary] = client.gather(futures)
        except BaseException:
            client.cancel(futures)
            raise
    finally:
        client.cancel([shipped])
    results = [
        PartitionResult(source, destination, summary)
        for source, destination, summary in zip(sources, destinations, summaries, strict=True)
    ]
    logger.info(
        "partitions scored",
        extra={
            "version": scorer.model.version,
            "partitions": len(results),
            "rows": sum(r.summary.rows for r in results),
            "bad_rows": sum(r.summary.bad_rows for r in results),
        },
    )
    return results


def _score_partition(source: Path, destination: Path, *, scorer: PartitionScorer) -> BulkSummary:
    """One task, run on a worker: the probe check, then the file."""
    scorer.check()
    return scorer.score_file(source, destination)


@contextmanager
def cluster_client(scheduler: str | None = None, workers: int = 1) -> Iterator[Client]:
    """A client of the scheduler at `scheduler`, or of a local cluster of `workers` processes.

    Local workers are processes of one thread each: scoring holds the GIL, so a
    second thread in a worker would only wait for it.
    """
    if scheduler is not None:
        with Client(scheduler, set_as_default=False) as client:
            # Tasks would wait for ever on a scheduler without workers.
            client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client
