"""The prediction log's writer: requests queue rows, one thread per worker inserts them.

A prediction never waits for the database. The route appends its rows to an
in-memory queue (a few microseconds); a background thread takes up to
`batch_rows` of them at a time, at least every `flush_seconds`, and inserts
each batch with one statement. While the database is slow or down the thread
keeps its current batch and retries; the queue fills up to its bound, and rows
beyond it are dropped, counted in `garoupa_prediction_log_dropped_total` and
reported in a warning at most every few seconds. `close()` flushes what is
queued before the worker exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import InterfaceError, OperationalError

from app.core.metrics import Metrics
from app.crud import prediction_log as crud
from app.crud import prediction_rollup as rollup
from app.crud import prediction_timeline as timeline

logger = logging.getLogger(__name__)

# (created, client_id, model_version, name, category, score, needs_review, in_scope,
# request_id, item, latency_ms): a tuple, the cheapest thing to build on the request path.
LogRow = tuple[float, str, str, str, str, float, bool, bool, str | None, int, float]

# Any constant shared by every replica: the retention purge runs in one at a time.
_PG_PURGE_LOCK = 0x67617270
_DROP_WARNING_SECONDS = 10.0


class PredictionLog:
    """One worker's queue of prediction rows and the thread that writes them."""

    def __init__(
        self,
        engine: Engine,
        metrics: Metrics,
        *,
        fraction: float,
        max_rows: int,
        batch_rows: int = 1000,
        flush_seconds: float = 0.2,
        retry_seconds: float = 1.0,
        sample: Callable[[], float] = random.random,
    ) -> None:
        self._engine = engine
        self._metrics = metrics
        self._fraction = fraction
        self._max_rows = max_rows
        self._batch_rows = batch_rows
        self._flush_seconds = flush_seconds
        self._retry_seconds = retry_seconds
        self._sample = sample
        # deque's append, extend and popleft are atomic: request threads and the
        # event loop add while the writer takes, without a lock.
        self._rows: deque[LogRow] = deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._dropped_since_warning = 0
        self._last_warning = 0.0
        self._drop_lock = threading.Lock()
        # True from taking a batch until it is written or given up: flush() waits on it.
        self._writing = False
        # Held by a purge and roll-up pass (see close()).
        self._maintenance = threading.Lock()

    @property
    def enabled(self) -> bool:
        """False when PREDICTION_LOG is off."""
        return self._fraction > 0.0

    def wants(self) -> bool:
        """Whether this request is recorded (every one unless the log samples)."""
        fraction = self._fraction
        return fraction >= 1.0 or (fraction > 0.0 and self._sample() < fraction)

    def record(
        self,
        client_id: str,
        model_version: str,
        predictions: Sequence[tuple[str, str, float, bool, bool]],
        request_id: str | None,
        latency_ms: float,
    ) -> None:
        """Queue one request's predictions: (name, category, score, needs_review, in_scope)."""
        now = time.time()
        rows = self._rows
        room = self._max_rows - len(rows)
        if len(predictions) > room:
            self._dropped(len(predictions) - max(room, 0), "queue_full")
            predictions = predictions[: max(room, 0)]
        rows.extend(
            (
                now,
                client_id,
                model_version,
                name,
                category,
                score,
                review,
                scoped,
                request_id,
                item,
                latency_ms,
            )
            for item, (name, category, score, review, scoped) in enumerate(predictions)
        )
        if len(rows) >= self._batch_rows:
            self._wake.set()

    def start(self) -> None:
        """Start the writer thread (nothing to do when the log is off)."""
        if not self.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is queued and stop; rows still unwritten after `timeout` are counted."""
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        self._wake.set()
        thread.join(timeout)
        self._thread = None
        # A maintenance pass runs in a thread pool that shutdown does not wait for; it
        # stops at its next step once _stopping is set, and must have stopped before
        # the database goes (or, in tests, its schema is dropped under it).
        if self._maintenance.acquire(timeout=timeout):
            self._maintenance.release()
        if thread.is_alive():
            # The database is hanging: the thread is a daemon and dies with the process.
            self._dropped(len(self._rows), "shutdown")

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every row queued so far is written; False after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self._rows or self._writing:
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            time.sleep(0.01)
        return True

    def _take(self) -> list[LogRow]:
        rows = self._rows
        batch: list[LogRow] = []
        with contextlib.suppress(IndexError):
            for _ in range(self._batch_rows):
                batch.append(rows.popleft())
        return batch

    def _run(self) -> None:
        pending: list[LogRow] = []
        while True:
            stopping = self._stopping.is_set()
            self._writing = True
            if not pending:
                pending = self._take()
            if not pending:
                self._writing = False
                if stopping:
                    return
                self._wake.wait(self._flush_seconds)
                self._wake.clear()
                continue
            try:
                self.write_batch(pending)
            except (OperationalError, InterfaceError) as exc:
                # The database is unreachable, restarting or locked: keep the batch
                # and retry, while new rows wait in the bounded queue.
                logger.warning(
                    "prediction log write failed",
                    extra={"error": type(exc).__name__, "rows": len(pending) + len(self._rows)},
                )
                if stopping:
                    self._dropped(len(pending) + len(self._rows), "shutdown")
                    self._rows.clear()
                    self._writing = False
                    return
                self._stopping.wait(self._retry_seconds)
                continue
            except Exception:
                # Not an outage (a constraint, a value the database refuses, a bug):
                # retrying would fail the same way forever and stall every later
                # row, so the batch is dropped, counted and logged.
                logger.exception("prediction log write failed")
                self._dropped(len(pending), "error")
            finally:
                self._metrics.log_queued.set(len(self._rows))
            pending = []
            self._writing = False
            if len(self._rows) < self._batch_rows and not self._stopping.is_set():
                self._wake.wait(self._flush_seconds)
                self._wake.clear()

    def write_batch(self, batch: list[LogRow]) -> None:
        """Insert rows (in queue form) and their daily sums now; the writer thread calls
        this, and so may a tool that imports rows with their own times."""
        rows = _storable_rows(batch)
        sums = _daily_sums(rows)
        with self._engine.begin() as connection:
            crud.insert_rows(connection, rows)
            # Same transaction: the sums never disagree with the rows.
            crud.add_to_daily(connection, sums)
            timeline.add_to_timeline(connection, timeline.timeline_sums(batch))
            # Asked last, so a transaction held up past midnight still sees its day
            # as over: only rows of days already over can be late for a rollup.
            today = datetime.now(UTC).date()
            late = sorted({entry["day"] for entry in sums if entry["day"] < today})
            if late:
                rollup.invalidate(connection, late)
        self._metrics.log_written.inc(len(batch))

    def _dropped(self, count: int, reason: str) -> None:
        if count <= 0:
            return
        self._metrics.log_dropped.labels(reason).inc(count)
        with self._drop_lock:
            self._dropped_since_warning += count
            now = time.monotonic()
            if now - self._last_warning < _DROP_WARNING_SECONDS and reason == "queue_full":
                return
            dropped, self._dropped_since_warning = self._dropped_since_warning, 0
            self._last_warning = now
        logger.warning(
            "prediction log dropped rows",
            extra={"dropped": dropped, "reason": reason, "queue_rows": self._max_rows},
        )

    def roll_up(self, first_kept: date, now: datetime | None = None) -> int:
        """Roll up every closed day from `first_kept` on not rolled up yet, one day per
        transaction (app/crud/prediction_rollup.py); how many days were."""
        days = 0
        while not self._stopping.is_set():
            with self._engine.begin() as connection:
                if not rollup.roll_up_next(connection, first_kept, now):
                    break
            days += 1
        if days:
            logger.info("prediction statistics rolled up", extra={"days": days})
        return days

    def roll_up_pending(self, retention_days: float, now: datetime | None = None) -> int:
        """`roll_up` if a closed day is waiting; how many days were rolled up.

        Asked every minute (app/main.py), so that month-long statistics are fast
        again minutes after midnight, not at the next hourly purge. Asking is one
        small read; the roll-up itself takes the purge lock like the hourly pass,
        and skips this turn when another process or pass holds it.
        """
        now = now or datetime.now(UTC)
        first_kept = (now - timedelta(days=retention_days)).date()
        with self._engine.connect() as connection:
            if rollup.pending_day(connection, first_kept, now) is None:
                return 0
        if not self._maintenance.acquire(blocking=False):
            return 0
        try:
            with _purge_lock(self._engine) as acquired:
                return self.roll_up(first_kept, now) if acquired else 0
        finally:
            self._maintenance.release()

    def purge_expired(self, retention_days: float, *, chunk_rows: int = 5000) -> int:
        """Delete rows older than the retention, `chunk_rows` per transaction; how many went.

        At most one process purges at a time (an advisory lock on PostgreSQL, a
        lock file beside a SQLite database); the others return 0 at once.
        """
        cutoff = datetime.now(UTC) - timedelta(days=retention_days)
        deleted = 0
        with self._maintenance, _purge_lock(self._engine) as acquired:
            if not acquired:
                return 0
            while not self._stopping.is_set():
                with self._engine.begin() as connection:
                    went = crud.purge_before(connection, cutoff, chunk_rows)
                deleted += went
                if went < chunk_rows:
                    break
                # Let the writers in between chunks.
                time.sleep(0.05)
            # The sums of a day go once all of its rows may have gone.
            while not self._stopping.is_set():
                with self._engine.begin() as connection:
                    if not crud.purge_daily_before(connection, cutoff.date()):
                        break
            while not self._stopping.is_set():
                with self._engine.begin() as connection:
                    if not timeline.purge_timeline_before(connection, cutoff):
                        break
            if not self._stopping.is_set():
                with self._engine.begin() as connection:
                    rollup.purge_before(connection, cutoff.date())
                self.roll_up(cutoff.date())
        if deleted:
            logger.info("prediction log purged", extra={"rows": deleted})
        return deleted


def _storable_rows(batch: list[LogRow]) -> list[tuple[Any, ...]]:
    """The batch in insert form: times as datetimes, names the database can store."""
    rows: list[tuple[Any, ...]] = []
    last_time = -1.0
    instant = datetime.now(UTC)
    for row in batch:
        if row[0] != last_time:
            last_time = row[0]
            instant = datetime.fromtimestamp(last_time, UTC)
        name = row[3]
        if not name.isascii() or "\x00" in name:
            name = _storable(name)
        rows.append((instant, row[1], row[2], name, *row[4:]))
    return rows


def _daily_sums(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """The batch summed per (client, UTC day, version, category, review, scope)."""
    sums: dict[tuple[Any, ...], list[Any]] = {}
    for instant, client_id, version, _, category, score, review, scoped, _, item, _ in rows:
        key = (client_id, instant.date(), version, category, review, scoped)
        entry = sums.get(key)
        if entry is None:
            sums[key] = [1, 1 if item == 0 else 0, score]
        else:
            entry[0] += 1
            entry[1] += item == 0
            entry[2] += score
    # In key order, so two workers upserting the same keys lock them in the same order.
    return [
        {
            "client_id": key[0],
            "day": key[1],
            "model_version": key[2],
            "predicted_category": key[3],
            "needs_review": key[4],
            "in_scope": key[5],
            "predictions": entry[0],
            "requests": entry[1],
            "score_sum": entry[2],
        }
        for key, entry in sorted(sums.items())
    ]


def _storable(text: str) -> str:
    # PostgreSQL refuses NUL in text and UTF-8 has no lone surrogates: either would
    # fail the whole batch, so a client could otherwise keep its neighbours' rows
    # out of the log by sending such names.
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


@contextlib.contextmanager
def _purge_lock(engine: Engine) -> Iterator[bool]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            acquired = bool(
                connection.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": _PG_PURGE_LOCK}
                ).scalar()
            )
            connection.commit()
            try:
                yield acquired
            finally:
                if acquired:
                    connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_PURGE_LOCK})
                    connection.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield True
        return
    lock_path = Path(database).with_name(Path(database).name + ".purge.lock")
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
