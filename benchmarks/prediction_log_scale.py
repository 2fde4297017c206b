"""The prediction log at scale (issue 14, point 5): history, statistics, export and purge.

Creates a PostgreSQL schema of its own, migrates it with the service's migrations,
fills `prediction_log` with generated rows (COPY), then times the service's own
reads (`PredictionHistory.page`, `.stats`, `.export_csv`), the writer
(`PredictionLog.write_batch`) and the retention purge (`PredictionLog.purge_expired`),
and prints one Markdown table, then the plans of the history and statistics
statements. With `--compare` (the default) it also times candidate changes inside
its schema (extra indexes, statistics as one statement, other ways to export), to
measure them before anyone proposes them. The schema is dropped at the end, also
after a failure, Ctrl-C or SIGTERM.

The generated log: `--rows` rows evenly spread over the last `--days` days in
insertion order (ids grow with time, as real traffic writes them, so a client's
rows are scattered over the whole heap), over `--clients` clients with Zipf-like
shares (p ~ 1/rank^s, so one heavy client), product names and their 100
categories from benchmarks/synthetic.py, three model versions that follow each
other in time with some overlap, beta(6, 1.2) scores, 3 % out of scope and
needs_review for a score below 0.5 or out of scope; `prediction_daily` (when
the schema has it) is summed from those rows as the writer would have kept it.
Autovacuum is off on the table during the run (VACUUM ANALYZE runs once after
the fill) so it cannot land in the middle of a timing.

Targets (issue 14): p99 <= 100 ms for one client's history and statistics over
30 days with 10 million rows; CSV export >= 50,000 rows/s with flat memory.

    .venv/bin/python benchmarks/prediction_log_scale.py     # 10M rows: 15-20 min on 2 cores
    .venv/bin/python benchmarks/prediction_log_scale.py --rows 300000 --export-rows 50000 \
        --purge-rows 30000                                       # a quick look
"""

from __future__ import annotations

import argparse
import csv
import gc
import io
import math
import os
import resource
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
from sqlalchemy import Engine, create_engine, event, make_url, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.metrics import setup_metrics  # noqa: E402
from app.crud import prediction_log as log_crud  # noqa: E402
from app.crud.prediction_log import _TABLE, LogFilter  # noqa: E402
from app.db.database import Database, open_database  # noqa: E402
from app.db.models import PredictionLogEntry  # noqa: E402
from app.services.prediction_history import (  # noqa: E402
    EXPORT_CHUNK_ROWS,
    EXPORT_COLUMNS,
    PredictionHistory,
    _csv_row,
    _drain,
    bounded_range,
    encode_cursor,
)
from app.services.prediction_log import PredictionLog  # noqa: E402
from benchmarks.synthetic import generate  # noqa: E402

DEFAULT_URL = os.environ.get(
    "GAROUPA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TARGET_P99_MS = 100.0
TARGET_EXPORT_ROWS_S = 50_000.0
RANGE_DAYS = 30
VERSIONS = ("v1.4.0", "v1.5.0", "v1.6.0")
COPY_SQL = (
    "COPY prediction_log (created_at, client_id, model_version, product_name, "
    "predicted_category, score, needs_review, in_scope, request_id, item, latency_ms) "
    "FROM STDIN"
)
CHUNK_ROWS = 200_000
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Report:
    """The results table, plus the plans and notes printed under it."""

    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    plans: list[tuple[str, list[str]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, what: str, result: str, target: str = "", met: str = "") -> None:
        self.rows.append((what, result, target, met))
        print(f"  {what}: {result} [{load()}]", flush=True)

    def print(self) -> None:
        print("\n| measurement | result | target | met |")
        print("|---|---|---|---|")
        for row in self.rows:
            print("| " + " | ".join(row) + " |")
        for title, lines in self.plans:
            print(f"\n{title}\n\n```")
            print("\n".join(lines))
            print("```")
        for note in self.notes:
            print(f"\n{note}")


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"


# --- the schema ----------------------------------------------------------------


def schema_url(base_url: str, schema: str) -> str:
    """`base_url` with search_path set to `schema`, as tests/support/databases.py does."""
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def drop_schema(admin: Engine, schema: str) -> None:
    try:
        with admin.begin() as connection:
            # A connection the run failed to close would otherwise hang the drop for ever.
            connection.execute(text("SET LOCAL lock_timeout = '60s'"))
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        print(f"dropped schema {schema}", flush=True)
    except Exception as exc:  # the operator needs the name to clean up by hand
        print(f"could not drop schema {schema} ({exc}); run DROP SCHEMA {schema} CASCADE")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so the `finally` that drops the schema runs.
    raise KeyboardInterrupt


# --- filling -------------------------------------------------------------------


@dataclass(frozen=True)
class Population:
    clients: np.ndarray  # client ids, heaviest first
    client_p: np.ndarray
    names: np.ndarray  # product names, escaped for COPY's text format
    categories: np.ndarray  # each name's category, escaped likewise


def population(n_clients: int, zipf_s: float, seed: int) -> Population:
    rng = np.random.default_rng(seed)
    clients = np.array(
        [f"shop-{rank:03d}-{int(rng.integers(16**6)):06x}" for rank in range(1, n_clients + 1)]
    )
    weights = 1.0 / np.arange(1, n_clients + 1, dtype=np.float64) ** zipf_s
    catalogue = generate(100, 20_000, seed)
    names = np.array([_copy_escape(name) for name, _ in catalogue])
    categories = np.array([_copy_escape(category) for _, category in catalogue])
    return Population(clients, weights / weights.sum(), names, categories)


def _copy_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "")


def chunk_text(
    rng: np.random.Generator, pop: Population, lo_us: int, hi_us: int, n: int, span: tuple[int, int]
) -> bytes:
    """`n` rows in COPY text format at ascending instants in [lo_us, hi_us) (UTC µs)."""
    times = np.sort(rng.integers(lo_us, hi_us, n))
    # Each version serves about a third of the timeline; the noise is a canary's overlap.
    phase = (times - span[0]) / (span[1] - span[0]) * len(VERSIONS) + rng.normal(0, 0.15, n)
    version = np.clip(np.floor(phase), 0, len(VERSIONS) - 1).astype(np.int64)
    who = rng.choice(len(pop.clients), n, p=pop.client_p)
    what = rng.integers(0, len(pop.names), n)
    score = rng.beta(6.0, 1.2, n)
    in_scope = rng.random(n) > 0.03
    review = (score < 0.5) | ~in_scope
    # Most requests name one product; batch items carry their position.
    items = np.where(rng.random(n) < 0.85, 0, rng.integers(1, 20, n))
    latency = np.round(rng.lognormal(math.log(1.5), 0.5, n), 3)
    request_ids = os.urandom(16 * n).hex()
    columns = (
        np.datetime_as_string(times.astype("datetime64[us]"), unit="us").tolist(),
        pop.clients[who].tolist(),
        np.array(VERSIONS)[version].tolist(),
        pop.names[what].tolist(),
        pop.categories[what].tolist(),
        list(map(repr, score.tolist())),
        np.where(review, "t", "f").tolist(),
        np.where(in_scope, "t", "f").tolist(),
        [request_ids[i : i + 32] for i in range(0, 32 * n, 32)],
        list(map(str, items.tolist())),
        list(map(repr, latency.tolist())),
    )
    return ("\n".join(map("\t".join, zip(*columns, strict=True))) + "\n").encode()


def fill(engine: Engine, pop: Population, rows: int, days: float, now: datetime, seed: int) -> None:
    """COPY `rows` generated rows into prediction_log, oldest first, then VACUUM ANALYZE."""
    rng = np.random.default_rng(seed + 1)
    end_us = int(now.timestamp() * 1e6)
    start_us = end_us - int(days * 86400e6)
    chunks = max(1, math.ceil(rows / CHUNK_ROWS))
    started = time.perf_counter()
    written = 0
    last_print = 0
    with engine.connect() as connection:
        connection.execute(text("ALTER TABLE prediction_log SET (autovacuum_enabled = false)"))
        connection.commit()
        driver = connection.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor:
            # COPY's text timestamps carry no zone: the session's zone must be UTC.
            cursor.execute("SET TIME ZONE 'UTC'")
            cursor.execute("SET synchronous_commit = off")
            for i in range(chunks):
                n = min(CHUNK_ROWS, rows - written)
                lo = start_us + (end_us - start_us) * i // chunks
                hi = start_us + (end_us - start_us) * (i + 1) // chunks
                block = chunk_text(rng, pop, lo, hi, n, (start_us, end_us))
                with cursor.copy(COPY_SQL) as copy:
                    copy.write(block)
                driver.commit()
                written += n
                if written - last_print >= 1_000_000 or written == rows:
                    last_print = written
                    elapsed = time.perf_counter() - started
                    rate = written / elapsed
                    print(
                        f"  filled {written:,}/{rows:,} rows, {rate:,.0f} rows/s, "
                        f"{(rows - written) / rate:,.0f} s to go [{load()}]",
                        flush=True,
                    )
    elapsed = time.perf_counter() - started
    print(f"  fill: {rows:,} rows in {elapsed:,.0f} s ({rows / elapsed:,.0f} rows/s)", flush=True)
    vacuum(engine, "prediction_log")


def vacuum(engine: Engine, table: str) -> None:
    """VACUUM ANALYZE `table` until its pages are all-visible, as autovacuum would leave them.

    The visibility map is what lets index-only scans skip the heap. A VACUUM cannot
    mark rows newer than the oldest open transaction on the server (another test
    suite's, say), so it is repeated for a while when one is in the way.
    """
    started = time.perf_counter()
    for attempt in range(12):
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f"VACUUM (ANALYZE) {table}"))
            visible, pages = connection.execute(
                text(
                    "SELECT relallvisible, relpages FROM pg_class WHERE oid = CAST(:t AS regclass)"
                ),
                {"t": table},
            ).one()
        if pages == 0 or visible / pages >= 0.99:
            break
        print(
            f"  VACUUM {table}: {visible:,} of {pages:,} pages all-visible; an older "
            f"transaction holds it back, retrying ({attempt + 1})",
            flush=True,
        )
        time.sleep(10)
    share = visible / pages if pages else 1.0
    print(
        f"  VACUUM ANALYZE {table}: {time.perf_counter() - started:,.0f} s, "
        f"{share:.0%} of pages all-visible",
        flush=True,
    )


def fill_daily(engine: Engine) -> float:
    """Sum the log into prediction_daily, which the service keeps in step with it."""
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(text(f"INSERT INTO prediction_daily ({DAILY_COLUMNS}) {DAILY_SELECT}"))
    vacuum(engine, "prediction_daily")
    return time.perf_counter() - started


# --- timing --------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    samples_ms: list[float]

    def pct(self, p: float) -> float:
        ordered = sorted(self.samples_ms)
        # Nearest rank: with 200 samples p99 is the second slowest.
        return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]

    def text(self) -> str:
        return (
            f"p50 {self.pct(50):.1f} / p95 {self.pct(95):.1f} / p99 {self.pct(99):.1f} ms "
            f"(n={len(self.samples_ms)})"
        )


def timed(call: Callable[[], object], repeat: int, budget_s: float) -> Timing:
    """`repeat` warm timings of `call`, fewer (at least 20) when they outrun `budget_s`."""
    for _ in range(3):
        call()
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < repeat and (len(samples) < 20 or time.perf_counter() < deadline):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return Timing(samples)


def verdict(timing: Timing) -> str:
    return "yes" if timing.pct(99) <= TARGET_P99_MS else "**no**"


def scalar(db: Database, sql: str, **params: Any) -> Any:
    with db.engine.connect() as connection:
        return connection.execute(text(sql), params).scalar()


@dataclass(frozen=True)
class Subject:
    """A client the reads are timed for, with what its filters select."""

    label: str
    client_id: str
    rows_30d: int
    cursor: str  # points half-way down the client's 30 days
    # (value, rows in the client's 30 days): a category of median frequency, its
    # rarest category, and the model version it used least (none, once retired).
    category: tuple[str, int]
    rare_category: tuple[str, int]
    rare_version: tuple[str, int]


def subject(db: Database, label: str, client_id: str, rows_30d: int, since: datetime) -> Subject:
    with db.engine.connect() as connection:
        middle = connection.execute(
            text(
                "SELECT created_at, id FROM prediction_log WHERE client_id = :c "
                "AND created_at >= :since ORDER BY created_at DESC, id DESC OFFSET :k LIMIT 1"
            ),
            {"c": client_id, "since": since, "k": rows_30d // 2},
        ).one()

        def ranked(column: str) -> list[tuple[str, int]]:
            rows = connection.execute(
                text(
                    f"SELECT {column}, count(*) FROM prediction_log WHERE client_id = :c "
                    "AND created_at >= :since GROUP BY 1 ORDER BY 2 DESC, 1"
                ),
                {"c": client_id, "since": since},
            ).all()
            return [(str(value), int(count)) for value, count in rows]

        categories = ranked("predicted_category")
        used = dict(ranked("model_version"))
    versions = sorted(((v, used.get(v, 0)) for v in VERSIONS), key=lambda item: item[1])
    cursor = encode_cursor(PredictionLogEntry(id=middle.id, created_at=middle.created_at))
    return Subject(
        label,
        client_id,
        rows_30d,
        cursor,
        categories[len(categories) // 2],
        categories[-1],
        versions[0],
    )


def page_cases(who: Subject, since: datetime) -> list[tuple[str, LogFilter, str | None]]:
    client = who.client_id
    return [
        ("history, first page", LogFilter(client_id=client, since=since), None),
        ("history, page half-way down", LogFilter(client_id=client, since=since), who.cursor),
        (
            f"history, category of median frequency ({who.category[1]:,} rows)",
            LogFilter(client_id=client, since=since, category=who.category[0]),
            None,
        ),
        (
            "history, needs_review=true",
            LogFilter(client_id=client, since=since, needs_review=True),
            None,
        ),
        *rare_cases(who, since),
    ]


def rare_cases(who: Subject, since: datetime) -> list[tuple[str, LogFilter, str | None]]:
    """Filters that match few rows: the scan walks the client's whole range to fill a page."""
    client = who.client_id
    return [
        (
            f"history, rarest category ({who.rare_category[1]:,} rows)",
            LogFilter(client_id=client, since=since, category=who.rare_category[0]),
            None,
        ),
        (
            f"history, model_version={who.rare_version[0]} ({who.rare_version[1]:,} rows)",
            LogFilter(client_id=client, since=since, model_version=who.rare_version[0]),
            None,
        ),
    ]


def time_page(
    db: Database, where: LogFilter, cursor: str | None, repeat: int, budget: float
) -> Timing:
    def call() -> None:
        # A session per call, as a request gets one.
        with db.sessions() as session:
            PredictionHistory(session, db.sessions).page(where, limit=100, cursor=cursor)

    return timed(call, repeat, budget)


def time_stats(db: Database, where: LogFilter, repeat: int, budget: float) -> Timing:
    def call() -> None:
        with db.sessions() as session:
            assert PredictionHistory(session, db.sessions).stats(where).total

    return timed(call, repeat, budget)


def plans(db: Database, read: Callable[[Any], object]) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the statements `read(session)` sends, trimmed."""
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        with db.sessions() as session:
            read(session)
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    lines: list[str] = []
    with db.engine.connect() as connection:
        for statement, parameters in captured:
            plan = connection.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
            ).scalars()
            lines.append("-- " + " ".join(statement.split())[:160] + " ...")
            lines.extend(summary(list(plan)))
    return lines


def stats_plans(db: Database, where: LogFilter) -> list[str]:
    """The plans of the statements `stats` sends for `where`."""
    return plans(db, lambda session: PredictionHistory(session, db.sessions).stats(where))


def page_plans(db: Database, who: Subject, since: datetime) -> list[str]:
    """The plan of each history page read timed for `who`, under its label."""
    lines: list[str] = []
    for label, where, cursor in page_cases(who, since):
        lines.append(f"== {label}")
        lines.extend(
            plans(
                db,
                lambda session, where=where, cursor=cursor: PredictionHistory(
                    session, db.sessions
                ).page(where, limit=100, cursor=cursor),
            )
        )
    return lines


def summary(plan: list[str]) -> list[str]:
    keep = ("->", "Cond:", "Filter:", "Rows Removed", "Heap Fetches", "Execution Time", "Workers")
    out = [plan[0]]
    out += [line for line in plan[1:] if any(k in line for k in keep)]
    buffers = next((line for line in plan if "Buffers:" in line), None)
    if buffers:
        out.insert(1, buffers)
    return out


# --- export --------------------------------------------------------------------


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_BYTES


def export_filter(db: Database, heavy: str, rows: int, now: datetime) -> tuple[LogFilter, str]:
    """A filter matching about `rows` rows: the heavy client's newest, else everyone's."""
    total = scalar(db, "SELECT count(*) FROM prediction_log WHERE client_id = :c", c=heavy)
    if total >= rows:
        since = scalar(
            db,
            "SELECT created_at FROM prediction_log WHERE client_id = :c "
            "ORDER BY created_at DESC, id DESC OFFSET :k LIMIT 1",
            c=heavy,
            k=rows - 1,
        )
        return LogFilter(client_id=heavy, since=since, until=now), "heavy client"
    since = scalar(
        db,
        "SELECT created_at FROM prediction_log ORDER BY created_at DESC, id DESC OFFSET :k LIMIT 1",
        k=rows - 1,
    )
    return LogFilter(since=since, until=now), "all clients (admin)"


def export_core_rows(db: Database, where: LogFilter) -> Iterator[bytes]:
    """export_csv's output built from Core rows instead of ORM entities (a candidate)."""
    where = bounded_range(where)
    query = where.apply(select(*_TABLE.c)).order_by(_TABLE.c.created_at.desc(), _TABLE.c.id.desc())
    with db.sessions() as session:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(EXPORT_COLUMNS)
        yield _drain(buffer)
        result = session.execute(
            query.execution_options(stream_results=True, yield_per=EXPORT_CHUNK_ROWS)
        )
        for chunk in result.partitions():
            # A Core row has the entity's attribute names, so the service's formatter fits.
            writer.writerows(_csv_row(row) for row in chunk)  # type: ignore[arg-type]
            yield _drain(buffer)


def export_service(db: Database, where: LogFilter) -> Iterator[bytes]:
    with db.sessions() as session:
        yield from PredictionHistory(session, db.sessions).export_csv(where)


def export(
    db: Database, where: LogFilter, produce: Callable[[Database, LogFilter], Iterator[bytes]]
) -> tuple[int, int, float, int]:
    """(rows, bytes, seconds, peak RSS growth in bytes) of one export, consumed whole."""
    gc.collect()
    before = peak = rss_bytes()
    rows = size = 0
    started = time.perf_counter()
    for chunk in produce(db, where):
        size += len(chunk)
        rows += chunk.count(b"\n")
        # Sampled once per chunk (2,000 rows): where memory would pile up.
        peak = max(peak, rss_bytes())
    elapsed = time.perf_counter() - started
    return rows - 1, size, elapsed, peak - before


def time_export(
    db: Database,
    report: Report,
    label: str,
    where: LogFilter,
    produce: Callable[[Database, LogFilter], Iterator[bytes]],
) -> None:
    exported, size, seconds, growth = export(db, where, produce)
    rate = exported / seconds
    report.add(
        label,
        f"{exported:,} rows, {size / 2**20:,.0f} MiB in {seconds:.1f} s = "
        f"{rate:,.0f} rows/s; peak RSS growth {growth / 2**20:.1f} MiB",
        "≥ 50,000 rows/s, flat memory",
        "yes" if rate >= TARGET_EXPORT_ROWS_S else "**no**",
    )


# --- purge ---------------------------------------------------------------------


def purge(db: Database, rows: int) -> tuple[int, float, dict[str, list[float]]]:
    """Purge about `rows` of the oldest rows via PredictionLog.purge_expired.

    Returns (rows deleted, wall seconds, milliseconds of each DELETE transaction by
    the crud function that ran it).
    """
    cutoff = scalar(
        db, "SELECT created_at FROM prediction_log ORDER BY created_at OFFSET :k LIMIT 1", k=rows
    )
    spans: dict[str, list[float]] = {}
    originals = {
        name: getattr(log_crud, name)
        for name in ("purge_before", "purge_daily_before")
        if hasattr(log_crud, name)
    }

    def timing(name: str, original: Callable[..., int]) -> Callable[..., int]:
        def timed_call(*args: Any, **kwargs: Any) -> int:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spans.setdefault(name, []).append((time.perf_counter() - started) * 1000)

        return timed_call

    log = PredictionLog(db.engine, setup_metrics(), fraction=1.0, max_rows=1000)
    # Wraps the crud functions the service calls, to time each DELETE on its own.
    for name, original in originals.items():
        setattr(log_crud, name, timing(name, original))
    try:
        retention_days = (time.time() - cutoff.timestamp()) / 86400
        started = time.perf_counter()
        deleted = log.purge_expired(retention_days)
        elapsed = time.perf_counter() - started
    finally:
        for name, original in originals.items():
            setattr(log_crud, name, original)
    return deleted, elapsed, spans


def write_batches(db: Database, pop: Population, batches: int, batch_rows: int) -> Timing:
    """Milliseconds of PredictionLog.write_batch per batch, as the writer thread sends them."""
    log = PredictionLog(db.engine, setup_metrics(), fraction=1.0, max_rows=batch_rows)
    rng = np.random.default_rng(7)
    samples: list[float] = []
    for _ in range(batches):
        now = time.time()
        who = rng.choice(len(pop.clients), batch_rows, p=pop.client_p).tolist()
        what = rng.integers(0, len(pop.names), batch_rows).tolist()
        score = rng.beta(6.0, 1.2, batch_rows).tolist()
        batch = [
            (
                now + i * 1e-4,
                str(pop.clients[c]),
                VERSIONS[-1],
                str(pop.names[w]),
                str(pop.categories[w]),
                s,
                s < 0.5,
                True,
                uuid.uuid4().hex,
                0,
                1.5,
            )
            for i, (c, w, s) in enumerate(zip(who, what, score, strict=True))
        ]
        started = time.perf_counter()
        log.write_batch(batch)
        samples.append((time.perf_counter() - started) * 1000)
    return Timing(samples)


# --- candidate changes ---------------------------------------------------------

COVERING_INDEX = (
    "CREATE INDEX ix_bench_client_time_cover ON prediction_log (client_id, created_at, id) "
    "INCLUDE (predicted_category, model_version, score, needs_review, in_scope, item)"
)
CATEGORY_INDEX = (
    "CREATE INDEX ix_bench_client_predicted_category "
    "ON prediction_log (client_id, predicted_category, created_at, id)"
)
# prediction_log summed in the shape of the migration's prediction_daily table.
DAILY_SELECT = """
SELECT client_id, CAST(timezone('UTC', created_at) AS date) AS day, model_version,
       predicted_category, needs_review, in_scope, count(*) AS predictions,
       count(*) FILTER (WHERE item = 0) AS requests, sum(score) AS score_sum
FROM prediction_log GROUP BY 1, 2, 3, 4, 5, 6
"""
DAILY_COLUMNS = (
    "client_id, day, model_version, predicted_category, needs_review, in_scope, "
    "predictions, requests, score_sum"
)
# One statement for all three groupings: whole days from the daily sums, the partial
# days at either end from the log, each end a range of its own so an index answers it.
ROLLUP_STATS = """
WITH parts AS (
    SELECT day, predicted_category, model_version, predictions AS n, score_sum,
           CASE WHEN needs_review THEN predictions ELSE 0 END AS reviews,
           CASE WHEN in_scope THEN 0 ELSE predictions END AS out_of_scope, requests
    FROM prediction_daily WHERE client_id = :c AND day >= :d0 AND day < :d1
    UNION ALL
    SELECT CAST(timezone('UTC', created_at) AS date), predicted_category, model_version, 1,
           score, CAST(needs_review AS integer), CAST(NOT in_scope AS integer),
           CAST(item = 0 AS integer)
    FROM prediction_log WHERE client_id = :c AND created_at >= :since AND created_at < :t0
    UNION ALL
    SELECT CAST(timezone('UTC', created_at) AS date), predicted_category, model_version, 1,
           score, CAST(needs_review AS integer), CAST(NOT in_scope AS integer),
           CAST(item = 0 AS integer)
    FROM prediction_log WHERE client_id = :c AND created_at >= :t1 AND created_at < :until
)
SELECT day, predicted_category, model_version, sum(n), sum(score_sum), sum(reviews),
       sum(out_of_scope), sum(requests)
FROM parts GROUP BY GROUPING SETS ((1), (2), (3))
"""


def ddl(db: Database, sql: str) -> float:
    started = time.perf_counter()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(sql))
    return time.perf_counter() - started


def time_sql(db: Database, sql: str, params: dict[str, Any], repeat: int, budget: float) -> Timing:
    def call() -> None:
        with db.engine.connect() as connection:
            assert connection.execute(text(sql), params).all()

    return timed(call, repeat, budget)


def time_raw_stats(db: Database, where: LogFilter, repeat: int, budget: float) -> Timing:
    """The three groupings `stats` needs, all from the log rows (no daily sums)."""

    def call() -> None:
        bounded = bounded_range(where)
        with db.sessions() as session:
            for by in ("day", "category", "model_version"):
                assert log_crud.grouped(session, bounded, by)

    return timed(call, repeat, budget)


def index_size(db: Database, name: str) -> int:
    return int(scalar(db, "SELECT pg_relation_size(CAST(:n AS regclass))", n=name))


def midnight(instant: datetime) -> datetime:
    return instant.replace(hour=0, minute=0, second=0, microsecond=0)


def compare(
    db: Database,
    report: Report,
    subjects: list[Subject],
    export_where: LogFilter,
    repeat: int,
    budget: float,
) -> None:
    """Time candidate exports, indexes and statistics queries against the shipped code."""
    whose = "heavy client" if export_where.client_id else "all clients"
    time_export(
        db,
        report,
        f"candidate: export from Core rows by Python's csv ({whose})",
        export_where,
        export_core_rows,
    )

    target = ("p99 ≤ 100 ms",)
    daily = has_table(db, "prediction_daily")
    if daily:
        # What the daily sums save: the same statistics from the rows alone.
        for who in subjects:
            timing = time_raw_stats(db, LogFilter(client_id=who.client_id), repeat, budget)
            report.add(
                f"stats from the log rows only (no prediction_daily), {who.label}",
                timing.text(),
                *target,
                verdict(timing),
            )
        # What the partial days at the ends cost: a range of whole UTC days reads only sums.
        end = midnight(datetime.now(UTC))
        for who in subjects:
            where = LogFilter(client_id=who.client_id, since=end - timedelta(days=30), until=end)
            timing = time_stats(db, where, repeat, budget)
            report.add(
                f"stats over 30 whole UTC days (sums only), {who.label}",
                timing.text(),
                *target,
                verdict(timing),
            )

    since = datetime.now(UTC) - timedelta(days=RANGE_DAYS)
    for column in ("predicted_category", "model_version"):
        name = f"ix_bench_client_{column}"
        seconds = ddl(
            db, f"CREATE INDEX {name} ON prediction_log (client_id, {column}, created_at, id)"
        )
        ddl(db, "ANALYZE prediction_log")
        report.add(
            f"candidate: index (client_id, {column}, created_at, id)",
            f"built in {seconds:,.0f} s, {mib(index_size(db, name))}",
        )
        for who in subjects:
            label, where, _ = rare_cases(who, since)[0 if column == "predicted_category" else 1]
            timing = time_page(db, where, None, repeat, budget)
            report.add(
                f"candidate: {label} + this index, {who.label}",
                timing.text(),
                *target,
                verdict(timing),
            )
        ddl(db, f"DROP INDEX {name}")

    seconds = ddl(db, COVERING_INDEX)
    ddl(db, "ANALYZE prediction_log")
    size = index_size(db, "ix_bench_client_time_cover")
    report.add(
        "candidate: covering index (client_id, created_at, id) INCLUDE (category, "
        "version, score, needs_review, in_scope, item)",
        f"built in {seconds:,.0f} s, {mib(size)}",
    )
    for who in subjects:
        timing = time_stats(db, LogFilter(client_id=who.client_id), repeat, budget)
        report.add(
            f"candidate: stats + covering index, {who.label}",
            timing.text(),
            *target,
            verdict(timing),
        )
    report.plans.append(
        (
            "Stats statements, heavy client, with the covering index (trimmed):",
            stats_plans(db, LogFilter(client_id=subjects[0].client_id)),
        )
    )
    if daily:
        until = datetime.now(UTC)
        since = until - timedelta(days=30)
        first = midnight(since) + timedelta(days=1)
        end = midnight(until)
        for indexes in ("covering index", "shipped indexes"):
            if indexes == "shipped indexes":
                ddl(db, "DROP INDEX ix_bench_client_time_cover")
            for who in subjects:
                params = {
                    "c": who.client_id,
                    "since": since,
                    "until": until,
                    "d0": first.date(),
                    "d1": end.date(),
                    "t0": first,
                    "t1": end,
                }
                timing = time_sql(db, ROLLUP_STATS, params, repeat, budget)
                report.add(
                    f"candidate: stats as one GROUPING SETS statement + {indexes}, {who.label}",
                    timing.text(),
                    *target,
                    verdict(timing),
                )
    else:
        ddl(db, "DROP INDEX ix_bench_client_time_cover")


def has_table(db: Database, name: str) -> bool:
    return scalar(db, "SELECT to_regclass(:n)", n=name) is not None


# --- the run -------------------------------------------------------------------


def sizes(db: Database, report: Report) -> None:
    total = scalar(db, "SELECT pg_total_relation_size('prediction_log')")
    heap = scalar(db, "SELECT pg_relation_size('prediction_log')")
    report.add("prediction_log total (heap + TOAST + indexes)", mib(total))
    report.add("prediction_log heap", mib(heap))
    with db.engine.connect() as connection:
        indexes = connection.execute(
            text(
                "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) "
                "FROM pg_index WHERE indrelid = 'prediction_log'::regclass ORDER BY 1"
            )
        ).all()
    for name, size in indexes:
        report.add(f"index {name}", mib(size))
    if has_table(db, "prediction_daily"):
        rows = scalar(db, "SELECT count(*) FROM prediction_daily")
        size = scalar(db, "SELECT pg_total_relation_size('prediction_daily')")
        report.add("prediction_daily (with its indexes)", f"{rows:,} rows, {mib(size)}")


def run(args: argparse.Namespace, db: Database, report: Report) -> None:
    now = datetime.now(UTC)
    pop = population(args.clients, args.zipf, args.seed)
    print(f"filling prediction_log with {args.rows:,} rows [{load()}]", flush=True)
    fill(db.engine, pop, args.rows, args.days, now, args.seed)
    daily_seconds = None
    if has_table(db, "prediction_daily"):
        print(f"summing prediction_daily [{load()}]", flush=True)
        daily_seconds = fill_daily(db.engine)

    report.add("PostgreSQL", str(scalar(db, "SHOW server_version")))
    report.add("rows", f"{scalar(db, 'SELECT count(*) FROM prediction_log'):,}")
    report.add(
        "generated",
        f"{args.days:g} days, {args.clients} clients (Zipf s={args.zipf:g}), "
        f"{len(set(pop.categories.tolist()))} categories, {len(VERSIONS)} versions",
    )
    if daily_seconds is not None:
        report.add("prediction_daily summed from the log (setup)", f"{daily_seconds:,.0f} s")
    sizes(db, report)

    since = datetime.now(UTC) - timedelta(days=RANGE_DAYS)
    with db.engine.connect() as connection:
        per_client = connection.execute(
            text(
                "SELECT client_id, count(*) FROM prediction_log WHERE created_at >= :since "
                "GROUP BY 1 ORDER BY 2 DESC, 1"
            ),
            {"since": since},
        ).all()
    heavy_id, heavy_rows = per_client[0]
    median_id, median_rows = per_client[len(per_client) // 2]
    subjects = [
        subject(db, "heavy client", heavy_id, heavy_rows, since),
        subject(db, "median client", median_id, median_rows, since),
    ]
    for who in subjects:
        report.add(f"{who.label} rows in the last 30 days", f"{who.rows_30d:,} ({who.client_id})")

    print(f"timing reads [{load()}]", flush=True)
    for who in subjects:
        for label, where, cursor in page_cases(who, since):
            timing = time_page(db, where, cursor, args.repeat, args.budget)
            report.add(f"{label}, {who.label}", timing.text(), "p99 ≤ 100 ms", verdict(timing))
        timing = time_stats(db, LogFilter(client_id=who.client_id), args.repeat, args.budget)
        report.add(f"stats (30 days), {who.label}", timing.text(), "p99 ≤ 100 ms", verdict(timing))
    report.plans.append(
        (
            "Stats plans, heavy client, shipped indexes (EXPLAIN (ANALYZE, BUFFERS), trimmed):",
            stats_plans(db, LogFilter(client_id=heavy_id)),
        )
    )
    for who in subjects:
        report.plans.append(
            (
                f"History plans, {who.label}, shipped indexes (trimmed):",
                page_plans(db, who, since),
            )
        )

    print(f"timing exports [{load()}]", flush=True)
    small = max(1, args.export_rows // 10)
    for rows in (small, args.export_rows):
        where, whose = export_filter(db, heavy_id, rows, datetime.now(UTC))
        time_export(db, report, f"export_csv {rows:,} rows ({whose})", where, export_service)
    report.add(
        "process peak RSS (ru_maxrss)",
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB",
    )

    if args.compare:
        print(f"timing candidate changes [{load()}]", flush=True)
        compare(db, report, subjects, where, args.repeat, args.budget)

    if hasattr(PredictionLog, "write_batch"):
        print(f"timing the writer [{load()}]", flush=True)
        batch_rows = 1000
        timing = write_batches(db, pop, 200, batch_rows)
        rate = batch_rows * len(timing.samples_ms) / (sum(timing.samples_ms) / 1000)
        report.add(
            f"write_batch of {batch_rows:,} rows (log rows + daily-sum upsert)",
            f"{timing.text()}; {rate:,.0f} rows/s",
        )

    print(f"timing the purge [{load()}]", flush=True)
    deleted, seconds, spans = purge(db, args.purge_rows)
    chunk_ms = spans.get("purge_before", [])
    daily_ms = spans.get("purge_daily_before", [])
    inside = (sum(chunk_ms) + sum(daily_ms)) / 1000
    report.add(
        f"purge_expired of {args.purge_rows:,} expired rows",
        f"{deleted:,} rows in {seconds:.1f} s ({deleted / seconds:,.0f} rows/s): "
        f"{len(chunk_ms)} DELETEs of ≤ 5,000 rows, {len(daily_ms)} of a day of sums, "
        f"{inside:.1f} s inside them, the rest the 0.05 s pauses between chunks",
    )
    if chunk_ms:
        report.add(
            "purge: one 5,000-row DELETE transaction",
            Timing(chunk_ms).text() + f", first {chunk_ms[0]:.0f} ms, last {chunk_ms[-1]:.0f} ms",
        )
    if daily_ms:
        report.add("purge: one day of daily sums", Timing(daily_ms).text())
    # Deleted rows leave dead tuples in the heap and every index until a VACUUM,
    # which reads all of each index however few rows went.
    seconds = ddl(db, "VACUUM prediction_log")
    report.add("VACUUM prediction_log after the purge", f"{seconds:.1f} s")
    if args.compare and hasattr(PredictionLog, "write_batch"):
        # Last, as its rows land in today's range: what one more index costs the writer.
        ddl(db, CATEGORY_INDEX)
        timing = write_batches(db, pop, 200, 1000)
        report.add(
            "candidate: write_batch of 1,000 rows + index (client_id, predicted_category, "
            "created_at, id)",
            timing.text(),
        )
        ddl(db, "DROP INDEX ix_bench_client_predicted_category")
    report.notes.append(f"Finished with {load()}.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows to generate")
    parser.add_argument("--clients", type=int, default=200, help="clients the rows spread over")
    parser.add_argument("--days", type=float, default=60, help="days the rows spread over")
    parser.add_argument(
        "--export-rows",
        type=int,
        default=1_000_000,
        help="rows of the large CSV export (a tenth of it is exported first, to compare memory)",
    )
    parser.add_argument("--purge-rows", type=int, default=1_000_000, help="expired rows to purge")
    parser.add_argument(
        "--database-url", default=DEFAULT_URL, help="PostgreSQL server; a schema is made in it"
    )
    parser.add_argument("--zipf", type=float, default=1.0, help="client skew: p ~ 1/rank^zipf")
    parser.add_argument("--repeat", type=int, default=200, help="timed calls per read")
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="seconds per read before stopping early (never under 20 calls)",
    )
    parser.add_argument(
        "--compare",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time candidate indexes and a daily roll-up",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not make_url(args.database_url).drivername.startswith("postgresql"):
        parser.error("--database-url must be a PostgreSQL URL")

    signal.signal(signal.SIGTERM, _interrupt)
    # Restored in case it was started ignoring SIGINT (a shell's background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    schema = f"bench_log_{uuid.uuid4().hex[:10]}"
    admin = create_engine(args.database_url)
    report = Report()
    # The purge's metrics write multiprocess files: into a directory of our own.
    metrics_dir = tempfile.TemporaryDirectory(prefix="garoupa-bench-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir.name
    db: Database | None = None
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        print(f"schema {schema} [{load()}]", flush=True)
        db = open_database(schema_url(args.database_url, schema), migrate=True)
        run(args, db, report)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    finally:
        if db is not None:
            db.dispose()
        drop_schema(admin, schema)
        admin.dispose()
        metrics_dir.cleanup()
        if report.rows:
            report.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
