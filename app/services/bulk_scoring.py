"""Scoring a whole CSV of product names, a chunk at a time, as `POST /predict/batch` would.

The input is read as bytes and decoded line by line (bytes that are not UTF-8
are kept as surrogate escapes), so a bad byte sequence, an empty or overlong
name or a malformed row fails that row only: it gets an `error` cell and an
empty prediction, and the job goes on. Memory stays flat: a few chunks of rows
are held at a time, and every row is cut off at a bound however long its line is.

A name is checked by the API's own rules (`ProductName`, app/schemas/prediction.py,
applied over a chunk) and scored by the model object a worker serves
(`ServingModel`), so the result of a
name is the answer `/predict/batch` gives for it. `score_chunk` is a pure
function of the model and a chunk, so any process holding the model can score
any chunk: with `cores` above 1, chunks are scored on that many worker
processes forked once the model is loaded (its pages are shared, not copied),
while this process reads the input and writes the results in input order.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import os
import re
import secrets
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Annotated, BinaryIO, TextIO, get_args

import numpy as np
from pydantic import StringConstraints, TypeAdapter, ValidationError

from app.core.errors import BackendUnavailable, ModelNotReady, Unprocessable
from app.ml.dataset import fsync_directory
from app.ml.preprocessing import nfkc_length, normalize_many
from app.ml.scope import in_scope
from app.schemas.prediction import MAX_NAME_CHARS, ProductName
from app.services.models import ModelRegistry
from app.services.prediction import PredictionService, ServingModel
from app.services.prediction_history import neutralised

logger = logging.getLogger(__name__)

NAME_COLUMN = "product_name"
OUTPUT_COLUMNS = (
    "row",
    "product_name",
    "predicted_category",
    "prediction_score",
    "needs_review",
    "in_scope",
    "top2_category",
    "top2_score",
    "top3_category",
    "top3_score",
    "error",
)
TOP_K = 3
DEFAULT_CHUNK_ROWS = 4096
# Chunks handed to each worker process ahead of the one being written: one being
# scored and one waiting keeps every worker busy, and memory stays a few chunks.
CHUNKS_IN_FLIGHT_PER_CORE = 2

# One output row, in OUTPUT_COLUMNS order; `error` last, empty when the row was scored.
OutputRow = tuple[int | str | float, ...]

_BOM = "\ufeff"
# Where a byte sequence was not UTF-8, surrogateescape left a lone surrogate.
_SURROGATE = re.compile("[\ud800-\udfff]")
_NAME = TypeAdapter(ProductName)


def _string_constraints(annotated: object) -> StringConstraints:
    (constraints,) = [m for m in get_args(annotated)[1:] if isinstance(m, StringConstraints)]
    return constraints


# ProductName's trimming and raw length bounds alone (see _checked_names).
_BOUNDED = TypeAdapter(Annotated[str, _string_constraints(ProductName)])
_EMPTY_PREDICTION = ("",) * (len(OUTPUT_COLUMNS) - 3)


@dataclass(frozen=True)
class BulkLimits:
    """How much work one file may ask for."""

    max_rows: int = 10_000_000
    # Fields of one row; a row with more is refused (its other columns are not read).
    max_fields: int = 1024
    # Characters of one row, line ends included. This bounds every field, whatever
    # csv.field_size_limit is (a process-wide setting this module leaves alone).
    max_row_chars: int = 65_536
    chunk_rows: int = DEFAULT_CHUNK_ROWS


@dataclass(frozen=True, slots=True)
class InputRow:
    """One data row of the input: its 1-based number, its name cell, or why it is unreadable."""

    row: int
    name: str
    error: str | None = None


@dataclass(frozen=True)
class BulkProgress:
    """Where a run is: rows done, of which refused, and how far into the file."""

    rows: int
    bad_rows: int
    elapsed_seconds: float
    bytes_read: int
    # None when the input's size is unknown (a pipe).
    total_bytes: int | None

    @property
    def rows_per_second(self) -> float:
        """Rows done per second so far."""
        return self.rows / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    @property
    def fraction(self) -> float | None:
        """Share of the file's bytes read, when its size is known."""
        if not self.total_bytes:
            return None
        return min(1.0, self.bytes_read / self.total_bytes)

    @property
    def estimated_rows(self) -> int | None:
        """The file's rows, extrapolated from the rows in the bytes read so far."""
        fraction = self.fraction
        if not fraction:
            return None
        return max(self.rows, round(self.rows / fraction))

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the pace so far, when the file's size is known."""
        fraction = self.fraction
        if not fraction:
            return None
        return self.elapsed_seconds * (1.0 - fraction) / fraction


ProgressCallback = Callable[[BulkProgress], None]


@dataclass(frozen=True)
class BulkSummary:
    """What a finished run did."""

    model_version: str
    rows: int
    bad_rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        """Rows scored or refused per second of the run."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0


class TooManyRows(Unprocessable):
    """The file holds more rows than one run may score."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the file has more than {limit:,} data rows, the most one run may score")


class WorkerLost(BackendUnavailable):
    """A worker process scoring chunks died (killed, out of memory): the run cannot finish."""

    def __init__(self) -> None:
        super().__init__(
            "a bulk scoring worker process ended unexpectedly (out of memory or killed?)"
        )


class _RowTooLong(Exception):
    """Raised through csv.reader when a row passes BulkLimits.max_row_chars."""


class _BoundedLines:
    """The physical lines csv.reader asks for, each row cut off at `max_chars`.

    A line is read at most as far as the row's remaining allowance, so a file
    without line ends costs no more memory than one row. The reader of the rows
    resets `row_chars` before each row.
    """

    def __init__(self, text: TextIO, max_chars: int) -> None:
        self._text = text
        self._max_chars = max_chars
        self.row_chars = 0
        self._after_cr = False

    def __iter__(self) -> _BoundedLines:
        return self

    def __next__(self) -> str:
        line = self._readline(self._max_chars - self.row_chars + 1)
        if not line:
            raise StopIteration
        self.row_chars += len(line)
        if self.row_chars > self._max_chars:
            # Skip the rest of the physical line: the next row starts after it.
            while line and not line.endswith(("\n", "\r")):
                line = self._readline(self._max_chars)
            raise _RowTooLong()
        return line

    def _readline(self, limit: int) -> str:
        line = self._text.readline(limit)
        # readline returns "\r\n" whole unless its limit fell between the two; then
        # the lone "\n" that follows ends the row already ended, not an empty row.
        if self._after_cr and line == "\n":
            line = self._text.readline(limit)
        self._after_cr = line.endswith("\r")
        return line


def read_rows(source: BinaryIO, limits: BulkLimits) -> Generator[InputRow, None, None]:
    """The data rows of a CSV, in order, with the cell that holds each one's name.

    A first row with a `product_name` cell (any case, after a UTF-8 BOM) is the
    header and names the column; otherwise the first row is data and the name is
    in the first column. Blank lines are skipped; rows are numbered from 1 after
    the header. TooManyRows past `limits.max_rows`.
    """
    text = io.TextIOWrapper(source, encoding="utf-8", errors="surrogateescape", newline="")
    try:
        lines = _BoundedLines(text, limits.max_row_chars)
        reader = csv.reader(lines)
        column = 0
        number = 0
        first = True
        while True:
            lines.row_chars = 0
            error = None
            try:
                cells = next(reader)
            except StopIteration:
                return
            except _RowTooLong:
                cells, error = [], f"row longer than {limits.max_row_chars:,} characters"
            except csv.Error as exc:
                cells, error = [], f"malformed CSV row: {exc}"
            if first:
                first = False
                if cells:
                    cells[0] = cells[0].removeprefix(_BOM)
                header = _name_column(cells)
                if header is not None:
                    column = header
                    continue
            if not cells and error is None:
                # A blank line is no row, as for csv.DictReader.
                continue
            number += 1
            if number > limits.max_rows:
                raise TooManyRows(limits.max_rows)
            yield _input_row(number, cells, column, error, limits)
    finally:
        # The caller owns `source`: the wrapper must not close it when collected.
        text.detach()


def _name_column(cells: Sequence[str]) -> int | None:
    for index, cell in enumerate(cells):
        if cell.strip().casefold() == NAME_COLUMN:
            return index
    return None


def _input_row(
    number: int, cells: Sequence[str], column: int, error: str | None, limits: BulkLimits
) -> InputRow:
    name = cells[column] if column < len(cells) else ""
    if error is None and len(cells) > limits.max_fields:
        error = f"row has {len(cells):,} fields, more than {limits.max_fields:,}"
    if error is None and not name.isascii() and _SURROGATE.search(name):
        error = "name is not valid UTF-8"
    return InputRow(number, name, error)


def score_chunk(
    model: ServingModel, rows: Sequence[InputRow], review_threshold: float
) -> list[OutputRow]:
    """Output rows for `rows`, in order: each name checked and scored as /predict/batch does.

    `review_threshold` is the one the route would use (`review_threshold()` in
    app/services/prediction.py). The result depends on the arguments alone, so any
    process holding the model can score any chunk.
    """
    outcomes = _checked_names(rows)
    names = [name for name, _ in outcomes if name is not None]
    ranked = iter(_ranked(model, names) if names else [])
    scored: list[OutputRow] = []
    for row, (name, error) in zip(rows, outcomes, strict=True):
        if name is None:
            shown = row.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            scored.append((row.row, neutralised(shown), *_EMPTY_PREDICTION, error or ""))
            continue
        categories, scores, scoped = next(ranked)
        # Predictions.needs_review: out of scope, or scored below the threshold.
        needs_review = not scoped or scores[0] < review_threshold
        scored.append(_predicted(row.row, name, categories, scores, scoped, needs_review))
    return scored


def _ranked(
    model: ServingModel, names: Sequence[str]
) -> Iterator[tuple[list[str], list[float], bool]]:
    """Each name's top TOP_K categories and scores, best first, and whether it is in scope.

    What `ServingModel.rank(names, TOP_K)` returns, read off the arrays at once:
    a `Ranked` object per name, built from numpy scalars, cost a sixth of a chunk.
    """
    proba, factor = model.probabilities(names)
    k = min(TOP_K, proba.shape[1])
    # As rank(): a stable sort of the negated scores keeps ties in class order.
    order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    classes = [str(category) for category in model.classes]
    categories = [[classes[j] for j in row] for row in order.tolist()]
    scores: list[list[float]] = np.take_along_axis(proba, order, axis=1).tolist()
    return zip(categories, scores, in_scope(factor).tolist(), strict=True)


def _checked_names(rows: Sequence[InputRow]) -> list[tuple[str | None, str | None]]:
    """Each row's name as the API reads it (trimmed), or None and why the API refuses it.

    ProductName's checks, over a chunk: its own trimming and raw bounds per name,
    then the two checks its validator makes after NFKC (the length, and a letter or
    digit left once normalised), with `normalize_many` over the chunk where the
    validator calls `normalize_product_name` per name, at four times the cost. A
    name either check refuses goes through ProductName itself, whose message the
    row then carries.
    """
    cells = [row.name for row in rows if row.error is None]
    trimmed = [_trimmed(cell) for cell in cells]
    normalised = iter(normalize_many([name for name in trimmed if name is not None]))
    checked: list[tuple[str | None, str | None]] = []
    for cell, name in zip(cells, trimmed, strict=True):
        if (
            name is not None
            and next(normalised)
            and nfkc_length(name, MAX_NAME_CHARS) <= MAX_NAME_CHARS
        ):
            checked.append((name, None))
        else:
            checked.append(_checked_name(cell))
    outcomes = iter(checked)
    return [(None, row.error) if row.error is not None else next(outcomes) for row in rows]


def _trimmed(cell: str) -> str | None:
    try:
        return _BOUNDED.validate_python(cell)
    except ValidationError:
        return None


def _checked_name(cell: str) -> tuple[str | None, str | None]:
    try:
        return _NAME.validate_python(cell), None
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "string_too_short":
            return None, "empty name"
        return None, str(first["msg"]).removeprefix("Value error, ")


def _predicted(
    number: int,
    name: str,
    categories: Sequence[str],
    scores: Sequence[float],
    scoped: bool,
    needs_review: bool,
) -> OutputRow:
    runners_up: list[str | float] = []
    for category, score in zip(categories[1:TOP_K], scores[1:TOP_K], strict=True):
        runners_up += [neutralised(category), score]
    runners_up += [""] * (2 * (TOP_K - 1) - len(runners_up))
    return (
        number,
        neutralised(name),
        neutralised(categories[0]),
        scores[0],
        "true" if needs_review else "false",
        "true" if scoped else "false",
        *runners_up,
        "",
    )


@dataclass(frozen=True, slots=True)
class ScoredChunk:
    """A chunk's output rows as RFC 4180 CSV (UTF-8, CRLF), and how many rows and bad rows."""

    data: bytes
    rows: int
    bad_rows: int


def score_chunk_csv(
    model: ServingModel, rows: Sequence[InputRow], review_threshold: float
) -> ScoredChunk:
    """`score_chunk` of `rows`, written out: what a worker process sends back for a chunk."""
    scored = score_chunk(model, rows, review_threshold)
    return ScoredChunk(_csv_bytes(scored), len(scored), sum(1 for cells in scored if cells[-1]))


def _csv_bytes(rows: Iterable[Sequence[object]]) -> bytes:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _chunks(rows: Iterator[InputRow], size: int) -> Iterator[list[InputRow]]:
    while chunk := list(itertools.islice(rows, size)):
        yield chunk


# A chunk as it travels to a worker: (row, name, error) of each row. Tuples pickle
# about fifteen times faster than the dataclasses, and pickling is this process's work.
_PackedRows = list[tuple[int, str, str | None]]
# The model and review threshold of a worker process, set by its initializer. The
# initializer is the only way into a worker, and with fork its arguments arrive as
# shared memory, never pickled; the parent never sets it.
_worker_scorer: tuple[ServingModel, float] | None = None


def _start_worker(model: ServingModel, review_threshold: float) -> None:
    global _worker_scorer
    _worker_scorer = (model, review_threshold)
    # The parent decides when the run stops: Ctrl-C reaches the whole process group,
    # and a CLI's SIGTERM handler (inherited through fork) must not run here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(
            target=_exit_with_parent, args=(parent.sentinel,), name="parent-watch", daemon=True
        ).start()


def _exit_with_parent(sentinel: int) -> None:
    # A worker waits for its next chunk on a pipe it also holds the write end of, so
    # it would wait forever once the parent is gone (a job abandoned with os._exit, a
    # CLI killed with SIGKILL). The sentinel becomes readable when the parent exits
    # (for a worker forked before others, once those have exited too: they inherited
    # the other end, and each of them exits the same way).
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


def _score_in_worker(packed: _PackedRows) -> ScoredChunk:
    assert _worker_scorer is not None, "not a worker process started by _ScoringProcesses"
    model, review_threshold = _worker_scorer
    return score_chunk_csv(model, [InputRow(*row) for row in packed], review_threshold)


class _ScoringProcesses:
    """`cores` forked worker processes scoring chunks, results in submission order.

    At most CHUNKS_IN_FLIGHT_PER_CORE chunks per worker are submitted and not yet
    taken back, so memory stays flat however long the file. Leaving the `with`
    block on an error cancels the chunks not started and waits for the (at most
    `cores`) running ones; the workers then exit.
    """

    def __init__(self, model: ServingModel, review_threshold: float, cores: int) -> None:
        # Fork, after the model is loaded: the workers share its pages copy-on-write
        # instead of each importing the libraries and loading a copy.
        self._executor = ProcessPoolExecutor(
            max_workers=cores,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_start_worker,
            initargs=(model, review_threshold),
        )
        self._window = CHUNKS_IN_FLIGHT_PER_CORE * cores

    def __enter__(self) -> _ScoringProcesses:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def scored(
        self, chunks: Iterable[tuple[list[InputRow], int]]
    ) -> Generator[tuple[ScoredChunk, int], None, None]:
        """Each chunk scored, with the position that came with it, in the order given."""
        in_flight: deque[tuple[Future[ScoredChunk], int]] = deque()
        try:
            for chunk, position in chunks:
                packed = [(row.row, row.name, row.error) for row in chunk]
                in_flight.append((self._executor.submit(_score_in_worker, packed), position))
                if len(in_flight) >= self._window:
                    future, done_at = in_flight.popleft()
                    yield future.result(), done_at
            while in_flight:
                future, done_at = in_flight.popleft()
                yield future.result(), done_at
        except BrokenProcessPool:
            # From submit() or result(), whichever comes after the executor saw a worker die.
            raise WorkerLost() from None


class BulkScorer:
    """Scores CSV files with one model version and one review threshold, on `cores` processes."""

    def __init__(
        self,
        model: ServingModel,
        review_threshold: float,
        limits: BulkLimits | None = None,
        *,
        cores: int = 1,
    ) -> None:
        if cores < 1:
            raise ValueError(f"cores must be at least 1, not {cores}")
        self._model = model
        self._review_threshold = review_threshold
        self._limits = limits or BulkLimits()
        self._cores = cores

    def score(
        self, source: BinaryIO, destination: BinaryIO, progress: ProgressCallback | None = None
    ) -> BulkSummary:
        """Write `source`'s rows scored to `destination` as RFC 4180 CSV (UTF-8, CRLF)."""
        total_bytes = _size(source)
        started = time.perf_counter()
        rows = bad_rows = 0
        destination.write(_csv_bytes([OUTPUT_COLUMNS]))
        with contextlib.ExitStack() as stack:
            # Closed here, not when collected: by then the caller may have closed `source`.
            rows_read = stack.enter_context(contextlib.closing(read_rows(source, self._limits)))
            chunks = (
                (chunk, source.tell()) for chunk in _chunks(rows_read, self._limits.chunk_rows)
            )
            if self._cores == 1:
                scored: Iterator[tuple[ScoredChunk, int]] = (
                    (score_chunk_csv(self._model, chunk, self._review_threshold), position)
                    for chunk, position in chunks
                )
            else:
                processes = stack.enter_context(
                    _ScoringProcesses(self._model, self._review_threshold, self._cores)
                )
                scored = stack.enter_context(contextlib.closing(processes.scored(chunks)))
            for result, bytes_read in scored:
                destination.write(result.data)
                rows += result.rows
                bad_rows += result.bad_rows
                if progress is not None:
                    elapsed = time.perf_counter() - started
                    progress(BulkProgress(rows, bad_rows, elapsed, bytes_read, total_bytes))
        destination.flush()
        summary = BulkSummary(self._model.version, rows, bad_rows, time.perf_counter() - started)
        logger.info(
            "bulk scoring finished",
            extra={
                "version": summary.model_version,
                "rows": rows,
                "bad_rows": bad_rows,
                "seconds": round(summary.seconds, 3),
                "cores": self._cores,
            },
        )
        return summary

    def score_file(
        self,
        source: Path,
        destination: Path,
        progress: ProgressCallback | None = None,
        *,
        mode: int = 0o666,
    ) -> BulkSummary:
        """`score` from file to file; `destination` appears only once complete.

        The output is written to a temporary file beside `destination` and renamed
        over it at the end: on any failure or interruption the temporary file is
        removed and an existing `destination` is left as it was. A progress
        callback that raises stops the run the same way (that is how a job is
        cancelled). `mode` is masked by the umask, as for open().
        """
        with source.open("rb") as reader:
            temporary = destination.with_name(f".{destination.name}.{secrets.token_hex(8)}.tmp")
            # Never over an existing file, nor through a symlink planted at its name.
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
            try:
                with os.fdopen(fd, "wb") as writer:
                    summary = self.score(reader, writer, progress)
                    os.fsync(writer.fileno())
                os.replace(temporary, destination)
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise
        fsync_directory(destination.parent)
        return summary


def _size(source: BinaryIO) -> int | None:
    try:
        return os.fstat(source.fileno()).st_size
    except OSError:
        # No file behind it (io.UnsupportedOperation is an OSError).
        return None


def load_serving_model(
    predictions: PredictionService, registry: ModelRegistry, version: str | None = None
) -> ServingModel:
    """`version` (default: the active one) loaded exactly as a worker loads it to serve.

    ModelVersionNotFound for an unknown version, ModelNotReady when none is active,
    ArtifactError when its files are missing or altered.
    """
    row = registry.active() if version is None else registry.get(version)
    if row is None:
        raise ModelNotReady()
    return predictions.load(row.version)
