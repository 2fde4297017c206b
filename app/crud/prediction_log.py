"""SQL for the prediction log: batched inserts, bounded purges, history, statistics, export.

Every read takes an optional client id: a client's routes always pass their own,
the admin routes may pass none (every client).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Date,
    Integer,
    Numeric,
    Select,
    Table,
    case,
    cast,
    delete,
    func,
    literal,
    select,
    tuple_,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.orm import Session

from app.crud import prediction_rollup as rollup
from app.db.base import LogInstant, epoch_micros
from app.db.models import Client, PredictionDaily, PredictionLogEntry

_LOG = PredictionLogEntry
_DAILY = PredictionDaily
_TABLE: Table = PredictionLogEntry.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class LogFilter:
    """Which rows a read covers; every field is optional."""

    client_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    category: str | None = None
    model_version: str | None = None
    needs_review: bool | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        """`query` of the log rows restricted to the rows this filter names."""
        conditions = self.key_conditions(_LOG)
        if self.since is not None:
            conditions.append(_LOG.created_at >= self.since)
        if self.until is not None:
            conditions.append(_LOG.created_at < self.until)
        return query.where(*conditions) if conditions else query

    def key_conditions(self, model: Any) -> list[ColumnElement[bool]]:
        """Conditions on what the log rows and the daily sums share (not the instants)."""
        conditions: list[ColumnElement[bool]] = []
        if self.client_id is not None:
            conditions.append(model.client_id == self.client_id)
        if self.category is not None:
            conditions.append(model.predicted_category == self.category)
        if self.model_version is not None:
            conditions.append(model.model_version == self.model_version)
        if self.needs_review is not None:
            conditions.append(model.needs_review == self.needs_review)
        return conditions


# The column order of the rows `insert_rows` takes (the writer's queue holds them so).
COLUMNS = (
    "created_at",
    "client_id",
    "model_version",
    "product_name",
    "predicted_category",
    "score",
    "needs_review",
    "in_scope",
    "request_id",
    "item",
    "latency_ms",
)
_COLUMN_LIST = ", ".join(COLUMNS)


def insert_rows(connection: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert a batch of rows (in COLUMNS order, `created_at` an aware UTC datetime):
    COPY on PostgreSQL, a few multi-row INSERTs on SQLite.

    Below SQLAlchemy's per-row parameter processing on purpose: the log writes
    every prediction, and that processing would cost the worker more than the
    prediction itself.
    """
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor, cursor.copy(f"COPY prediction_log ({_COLUMN_LIST}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    # SQLite stores instants as integer microseconds (LogInstant); a batch shares few.
    last: datetime | None = None
    micros = 0
    stamped = []
    for row in rows:
        if row[0] != last:
            last = row[0]
            micros = epoch_micros(row[0])
        stamped.append((micros, *row[1:]))
    sqlite_insert_values(connection, f"INSERT INTO prediction_log ({_COLUMN_LIST})", stamped)


# Rows per multi-row INSERT on SQLite, at most (fewer when the build allows fewer variables).
_SQLITE_ROWS_PER_STATEMENT = 512


def sqlite_insert_values(
    connection: Connection, head: str, rows: Sequence[tuple[Any, ...]], tail: str = ""
) -> None:
    """`head VALUES (...), (...), ... tail` over `rows`, in statements of a power-of-two
    number of rows (so that the driver's statement cache holds every shape).

    Not executemany: Python's sqlite3 releases the GIL around every row's step and
    takes it back after, so a writer thread inserting row by row forces a GIL
    hand-over per row on the worker serving requests (measured: 5 % of a CPU-bound
    thread's throughput at 1,300 rows/s, against none for these statements).
    """
    if not rows:
        return
    width = len(rows[0])
    driver = connection.connection.driver_connection
    limit = driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)  # type: ignore[union-attr]
    most = 1 << (min(_SQLITE_ROWS_PER_STATEMENT, limit // width).bit_length() - 1)
    one = "(" + ", ".join("?" * width) + ")"
    start = 0
    while start < len(rows):
        size = min(most, 1 << ((len(rows) - start).bit_length() - 1))
        part = rows[start : start + size]
        statement = f"{head} VALUES {', '.join([one] * size)} {tail}"
        connection.exec_driver_sql(statement, tuple(value for row in part for value in row))
        start += size


def purge_before(connection: Connection, cutoff: datetime, limit: int) -> int:
    """Delete at most `limit` of the oldest rows created before `cutoff`; how many went."""
    # Bounded by id through a sub-select: neither SQLite nor PostgreSQL has
    # DELETE ... LIMIT, and one unbounded delete would hold its locks for minutes.
    oldest = select(_LOG.id).where(_LOG.created_at < cutoff).order_by(_LOG.created_at).limit(limit)
    result = connection.execute(delete(_TABLE).where(_TABLE.c.id.in_(oldest.scalar_subquery())))
    return int(result.rowcount)


def history(
    session: Session,
    where: LogFilter,
    *,
    limit: int,
    before: tuple[datetime, int] | None = None,
) -> Sequence[PredictionLogEntry]:
    """Rows newest first; `before` is the (created_at, id) of the last row already seen."""
    if where.category is not None or where.model_version is not None or where.needs_review:
        # A filter that matches few rows would otherwise walk the whole range for them
        # (1.5 s for a retired version of a client with 850,000 rows a month; 75 ms
        # once cut to the days that hold them, docs/performance.md).
        narrowed = _matching_days(session, where, before)
        if narrowed is None:
            return []
        where = narrowed
    query = where.apply(select(_LOG))
    if before is not None:
        # A row-value comparison: the (client_id, created_at, id) index answers it directly.
        # The instant is typed explicitly: inside a tuple it would not take the column's.
        after = tuple_(literal(before[0], LogInstant()), literal(before[1], _LOG.id.type))
        query = query.where(tuple_(_LOG.created_at, _LOG.id) < after)
    query = query.order_by(_LOG.created_at.desc(), _LOG.id.desc()).limit(limit)
    return session.scalars(query).all()


def _matching_days(
    session: Session, where: LogFilter, before: tuple[datetime, int] | None
) -> LogFilter | None:
    """`where` with its range cut to the first and last UTC day the daily sums show a
    matching row on (None when they show none): a filter that matches few rows
    then reads only the days that hold them, not the whole range."""
    day = _DAILY.day.expression
    conditions = where.key_conditions(_DAILY)
    if where.since is not None:
        conditions.append(day >= _midnight(where.since).date())
    upper = where.until
    if before is not None and (upper is None or before[0] < upper):
        upper = before[0]
    if upper is not None:
        conditions.append(day <= _midnight(upper).date())
    first, last = session.execute(select(func.min(day), func.max(day)).where(*conditions)).one()
    if first is None:
        return None
    since = datetime.combine(first, time(), UTC)
    until = datetime.combine(last, time(), UTC) + timedelta(days=1)
    return replace(
        where,
        since=since if where.since is None else max(since, where.since),
        until=until if where.until is None else min(until, where.until),
    )


def stream(
    session: Session, where: LogFilter, *, chunk_rows: int
) -> Iterator[Sequence[PredictionLogEntry]]:
    """Every matching row, newest first, fetched `chunk_rows` at a time from a server cursor."""
    query = where.apply(select(_LOG)).order_by(_LOG.created_at.desc(), _LOG.id.desc())
    result = session.execute(query.execution_options(stream_results=True, yield_per=chunk_rows))
    yield from result.scalars().partitions()


# Pieces of about this size make up a COPY export's streamed body.
_COPY_PIECE_BYTES = 64 * 1024


def copy_csv(
    connection: Connection, where: LogFilter, *, formula_starts: Sequence[str]
) -> Iterator[bytes]:
    """The rows `where` names as RFC 4180 CSV with a header, newest first, formatted by
    PostgreSQL's own `COPY (SELECT ...) TO STDOUT` (several times faster than building
    each line in Python).

    Text cells that begin with one of `formula_starts` get a leading `'`, as
    prediction_history.neutralised does; instants, scores and latencies come out as
    the Python writer prints them, so both backends export the same bytes.
    """

    def inert(column: Any) -> ColumnElement[Any]:
        return case((func.left(column, 1).in_(formula_starts), literal("'") + column), else_=column)

    instant = func.to_char(
        func.timezone("UTC", _LOG.created_at), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'
    )
    columns = select(
        instant.label("created_at"),
        inert(_LOG.client_id).label("client_id"),
        inert(_LOG.model_version).label("model_version"),
        inert(_LOG.product_name).label("product_name"),
        inert(_LOG.predicted_category).label("predicted_category"),
        _LOG.score.label("prediction_score"),
        case((_LOG.needs_review, "true"), else_="false").label("needs_review"),
        case((_LOG.in_scope, "true"), else_="false").label("in_scope"),
        _LOG.request_id.label("request_id"),
        _LOG.item.label("item"),
        func.round(cast(_LOG.latency_ms, Numeric), 3).label("latency_ms"),
    )
    query = where.apply(columns).order_by(_LOG.created_at.desc(), _LOG.id.desc())
    # Every value stays a bound parameter: psycopg binds them into the COPY client-side.
    compiled = query.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        # Shortest round-trip float output (PostgreSQL's default since 12), like repr().
        cursor.execute("SET LOCAL extra_float_digits = 1")
        statement = f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv, HEADER)"
        with cursor.copy(statement, compiled.params) as copy:
            pending: list[bytes] = []
            size = 0
            # The protocol sends each row as one message, ending in COPY's LF: that LF,
            # and only it, becomes RFC 4180's CRLF (a line break inside a quoted name
            # stays as it was).
            for row in copy:
                pending.append(bytes(row[:-1]))
                pending.append(b"\r\n")
                size += len(row) + 1
                if size >= _COPY_PIECE_BYTES:
                    yield b"".join(pending)
                    pending, size = [], 0
            if pending:
                yield b"".join(pending)


@dataclass
class Group:
    """Predictions of one day, category, version or client: how many, their score sum,
    how many need review or were out of scope, and how many requests they came in."""

    key: str
    count: int
    score_sum: float
    needs_review: int
    out_of_scope: int
    requests: int

    @property
    def mean_score(self) -> float:
        """The group's mean score (0 when empty)."""
        return self.score_sum / self.count if self.count else 0.0

    def add(self, other: Group) -> None:
        """Fold another part of the same group (raw edge days, summed whole days) in."""
        self.count += other.count
        self.score_sum += other.score_sum
        self.needs_review += other.needs_review
        self.out_of_scope += other.out_of_scope
        self.requests += other.requests


def _day(session: Session) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        # The UTC day whatever the connection's TimeZone setting is.
        return cast(func.timezone("UTC", _LOG.created_at), Date)
    # SQLite stores integer microseconds since the epoch (LogInstant).
    return func.date(type_coerce(_LOG.created_at, BigInteger) / 1_000_000, "unixepoch")


def grouped(session: Session, where: LogFilter, by: str) -> list[Group]:
    """Per `by` (day, category, model_version or client_id) over the log rows themselves."""
    key: ColumnElement[Any] = _day(session) if by == "day" else _group_columns(_LOG)[by]
    query = where.apply(
        select(
            key,
            func.count(),
            func.sum(_LOG.score),
            func.sum(cast(_LOG.needs_review, Integer)),
            func.sum(cast(~_LOG.in_scope, Integer)),
            func.sum(case((_LOG.item == 0, 1), else_=0)),
        )
    ).group_by(key)
    return [_group(row) for row in session.execute(query)]


def grouped_over(session: Session, where: LogFilter, by: str) -> list[Group]:
    """Per `by` over `where` (which must have since and until): whole UTC days from the
    daily sums, the partial days at either end from the rows themselves.

    Days come in order; other groups largest first.
    """
    since, until = where.since, where.until
    assert since is not None and until is not None
    first = _midnight(since)
    if first < since:
        first += timedelta(days=1)
    end = _midnight(until)
    if first >= end:
        parts = grouped(session, where, by)
    else:
        parts = daily_grouped(session, where, by, first.date(), end.date())
        if since < first:
            parts += grouped(session, replace(where, until=first), by)
        if end < until:
            parts += grouped(session, replace(where, since=end), by)
    merged: dict[str, Group] = {}
    for part in parts:
        if part.key in merged:
            merged[part.key].add(part)
        else:
            merged[part.key] = part
    if by == "day":
        return sorted(merged.values(), key=lambda g: g.key)
    return sorted(merged.values(), key=lambda g: (-g.count, g.key))


def grouped_over_many(
    session: Session, where: LogFilter, bys: Sequence[str]
) -> dict[str, list[Group]]:
    """grouped_over for several `by`s at once (in the same orders).

    On PostgreSQL one statement reads the daily sums and the edge days' rows once
    and groups them by every `by` with GROUPING SETS, instead of one pass per `by`
    (the console's month overview: four passes over every client's sums).
    """
    if session.get_bind().dialect.name != "postgresql":
        return {by: grouped_over(session, where, by) for by in bys}
    since, until = where.since, where.until
    assert since is not None and until is not None
    first = _midnight(since)
    if first < since:
        first += timedelta(days=1)
    end = _midnight(until)
    parts: list[Select[Any]] = []
    if first >= end:
        parts.append(_rows_part(session, where))
    else:
        parts.extend(_daily_parts(session, where, bys, first.date(), end.date()))
        if since < first:
            parts.append(_rows_part(session, replace(where, until=first)))
        if end < until:
            parts.append(_rows_part(session, replace(where, since=end)))
    both = union_all(*parts).subquery()
    keys = {by: both.c[by] for by in bys}
    query = select(
        *(func.grouping(keys[by]) for by in bys),
        *keys.values(),
        func.sum(both.c.n),
        func.sum(both.c.score_sum),
        func.sum(both.c.review),
        func.sum(both.c.oos),
        func.sum(both.c.requests),
    ).group_by(func.grouping_sets(*keys.values()))
    found: dict[str, list[Group]] = {by: [] for by in bys}
    width = len(bys)
    for row in session.execute(query):
        # GROUPING(x) is 0 in the rows grouped by x.
        which = [i for i in range(width) if row[i] == 0]
        if len(which) != 1:
            continue
        i = which[0]
        if row[width + i] is None:
            # The rollups' missing keys (see prediction_rollup.part).
            continue
        found[bys[i]].append(_group((row[width + i], *row[2 * width :])))
    return {
        by: sorted(groups, key=lambda g: g.key)
        if by == "day"
        else sorted(groups, key=lambda g: (-g.count, g.key))
        for by, groups in found.items()
    }


def _daily_parts(
    session: Session, where: LogFilter, bys: Sequence[str], first_day: date, end_day: date
) -> list[Select[Any]]:
    """The whole days first_day..end_day: rolled-up days from the rollups when they
    can answer every `by`, the other days from the daily sums."""
    rolled = rollup.rolled_days(session, first_day, end_day) if rollup.serves(where, bys) else []
    parts = rollup.part(where, rolled, with_clients="client_id" in bys) if rolled else []
    return [*parts, _daily_part(where, first_day, end_day, rolled)]


def _daily_part(
    where: LogFilter, first_day: date, end_day: date, skipped: Sequence[date]
) -> Select[Any]:
    count = _DAILY.predictions
    conditions = [_DAILY.day >= first_day, _DAILY.day < end_day, *where.key_conditions(_DAILY)]
    if skipped:
        conditions.append(_DAILY.day.not_in(skipped))
    return select(
        _DAILY.day.label("day"),
        _DAILY.predicted_category.label("category"),
        _DAILY.model_version.label("model_version"),
        _DAILY.client_id.label("client_id"),
        count.label("n"),
        _DAILY.score_sum.label("score_sum"),
        case((_DAILY.needs_review, count), else_=0).label("review"),
        case((_DAILY.in_scope, 0), else_=count).label("oos"),
        _DAILY.requests.label("requests"),
    ).where(*conditions)


def _rows_part(session: Session, where: LogFilter) -> Select[Any]:
    return where.apply(
        select(
            _day(session).label("day"),
            _LOG.predicted_category.label("category"),
            _LOG.model_version.label("model_version"),
            _LOG.client_id.label("client_id"),
            cast(literal(1), BigInteger).label("n"),
            _LOG.score.label("score_sum"),
            cast(cast(_LOG.needs_review, Integer), BigInteger).label("review"),
            cast(cast(~_LOG.in_scope, Integer), BigInteger).label("oos"),
            cast(case((_LOG.item == 0, 1), else_=0), BigInteger).label("requests"),
        )
    )


def latest_per_client(session: Session, client_id: str | None = None) -> dict[str, datetime]:
    """Each registered client's (or `client_id`'s) newest logged prediction, in one
    statement of one backward index lookup per client."""
    newest = (
        select(_LOG.created_at)
        .where(_LOG.client_id == Client.client_id)
        .order_by(_LOG.created_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = select(Client.client_id, newest)
    if client_id is not None:
        query = query.where(Client.client_id == client_id)
    return {row[0]: row[1] for row in session.execute(query) if row[1] is not None}


def daily_grouped(
    session: Session, where: LogFilter, by: str, first_day: date, end_day: date
) -> list[Group]:
    """Per `by` over the daily sums of the whole days first_day..end_day (exclusive);
    the filter's client, category, version and review flag apply, its instants do not.

    Days rolled up service-wide come from the rollups when they can answer.
    """
    day = _DAILY.day.expression
    key: ColumnElement[Any] = day if by == "day" else _group_columns(_DAILY)[by]
    conditions = [day >= first_day, day < end_day, *where.key_conditions(_DAILY)]
    found: list[Group] = []
    if rollup.serves(where, (by,)):
        rolled = rollup.rolled_days(session, first_day, end_day)
        if rolled:
            found = [_group(row) for row in session.execute(rollup.grouped(where, by, rolled))]
            conditions.append(day.not_in(rolled))
    count = _DAILY.predictions
    query = (
        select(
            key,
            func.sum(count),
            func.sum(_DAILY.score_sum),
            func.sum(case((_DAILY.needs_review, count), else_=0)),
            func.sum(case((_DAILY.in_scope, 0), else_=count)),
            func.sum(_DAILY.requests),
        )
        .where(*conditions)
        .group_by(key)
    )
    return found + [_group(row) for row in session.execute(query)]


def add_to_daily(connection: Connection, sums: Sequence[Mapping[str, Any]]) -> None:
    """Add a batch's sums to the daily table: one upsert (the batch's keys are unique)."""
    if not sums:
        return
    table: Table = PredictionDaily.__table__  # type: ignore[assignment]
    key = [column.name for column in table.primary_key.columns]
    added = ("predictions", "requests", "score_sum")
    if connection.dialect.name == "sqlite":
        # As the rows: multi-row statements, not one GIL hand-over per key (days as
        # the ISO text SQLAlchemy stores a Date as on SQLite).
        names = [*key, *added]
        updates = ", ".join(f"{name} = {name} + excluded.{name}" for name in added)
        sqlite_insert_values(
            connection,
            f"INSERT INTO prediction_daily ({', '.join(names)})",
            [tuple(sum_[n].isoformat() if n == "day" else sum_[n] for n in names) for sum_ in sums],
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}",
        )
        return
    statement = postgresql_insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=key,
        set_={name: table.c[name] + statement.excluded[name] for name in added},
    )
    connection.execute(statement, list(sums))


def purge_daily_before(connection: Connection, first_kept: date) -> int:
    """Delete the oldest day of sums before `first_kept`: one day per call bounds the work."""
    oldest = connection.execute(
        select(func.min(_DAILY.day)).where(_DAILY.day < first_kept)
    ).scalar_one_or_none()
    if oldest is None:
        return 0
    result = connection.execute(delete(_DAILY).where(_DAILY.day == oldest))
    return max(int(result.rowcount), 1)


def _group_columns(model: Any) -> dict[str, ColumnElement[Any]]:
    return {
        "category": model.predicted_category.expression,
        "model_version": model.model_version.expression,
        "client_id": model.client_id.expression,
    }


def _group(row: Any) -> Group:
    return Group(
        key=_key_text(row[0]),
        count=int(row[1] or 0),
        score_sum=float(row[2] or 0.0),
        needs_review=int(row[3] or 0),
        out_of_scope=int(row[4] or 0),
        requests=int(row[5] or 0),
    )


def _midnight(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _key_text(value: object) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)
