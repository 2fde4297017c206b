"""Reading the prediction log: pages of history, statistics over a range, CSV export.

The routes decide whose rows a caller may read (its own, or any for an admin)
and pass that as the filter's client id; nothing here widens it.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.orm import Session, sessionmaker

from app.crud import client as client_crud
from app.crud import model_version as model_crud
from app.crud import prediction_log as crud
from app.crud import training_job as job_crud
from app.crud.prediction_log import Group, LogFilter
from app.db.models import PredictionLogEntry
from app.schemas.history import (
    MAX_RANGE_DAYS,
    AdminStats,
    CategoryStats,
    ClientStats,
    DayStats,
    HistoryPage,
    LogFilters,
    LoggedPrediction,
    PredictionStats,
    VersionStats,
)
from app.services.timeline import Timeline, read_timeline

# Statistics and exports without `since` cover this many days back from `until`.
DEFAULT_RANGE_DAYS = 30
EXPORT_CHUNK_ROWS = 2000
_STATS_GROUPS = ("day", "category", "model_version")
EXPORT_COLUMNS = (
    "created_at",
    "client_id",
    "model_version",
    "product_name",
    "predicted_category",
    "prediction_score",
    "needs_review",
    "in_scope",
    "request_id",
    "item",
    "latency_ms",
)
_MILLI = Decimal("0.001")
# OWASP's list of characters that make a spreadsheet read a cell as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class BadQuery(ValueError):
    """A query parameter that is well-formed but unusable; `field` names it.

    The routes answer it as the 422 FastAPI gives for a malformed parameter.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class PredictionHistory:
    """Reads of the prediction log on one session (exports open their own)."""

    def __init__(self, session: Session, sessions: sessionmaker[Session]) -> None:
        self._session = session
        self._sessions = sessions

    def page(self, where: LogFilter, *, limit: int, cursor: str | None) -> HistoryPage:
        """Up to `limit` rows newest first, after the row `cursor` points at."""
        _check_order(where)
        before = decode_cursor(cursor) if cursor is not None else None
        # One row more than asked tells whether another page follows, without a count.
        rows = crud.history(self._session, where, limit=limit + 1, before=before)
        items = [_logged(row) for row in rows[:limit]]
        more = len(rows) > limit
        next_cursor = encode_cursor(rows[limit - 1]) if more else None
        return HistoryPage(items=items, next_cursor=next_cursor)

    def stats(self, where: LogFilter) -> PredictionStats:
        """Totals and groups over the filter's range (the last 30 days by default)."""
        return self._stats(bounded_range(where), self._grouped(where, _STATS_GROUPS))

    def _stats(self, where: LogFilter, groups: dict[str, list[Group]]) -> PredictionStats:
        assert where.since is not None and where.until is not None
        versions = groups["model_version"]
        total = sum(g.count for g in versions)
        return PredictionStats(
            since=where.since,
            until=where.until,
            total=total,
            mean_score=_ratio(sum(g.score_sum for g in versions), total),
            review_rate=_ratio(sum(g.needs_review for g in versions), total),
            out_of_scope_rate=_ratio(sum(g.out_of_scope for g in versions), total),
            per_day=[DayStats(date=g.key, **_rates(g)) for g in groups["day"]],
            per_category=[CategoryStats(category=g.key, **_rates(g)) for g in groups["category"]],
            per_model_version=[VersionStats(model_version=g.key, **_rates(g)) for g in versions],
        )

    def overview(self, where: LogFilter) -> AdminStats:
        """Service-wide statistics for the admin: predictions, clients, jobs, active version."""
        groups = self._grouped(where, (*_STATS_GROUPS, "client_id"))
        predictions = self._stats(bounded_range(where), groups)
        active = model_crud.active_pointer(self._session)
        registered = client_crud.list_clients(self._session)
        return AdminStats(
            predictions=predictions,
            per_client=[ClientStats(client_id=g.key, **_rates(g)) for g in groups["client_id"]],
            training_jobs=job_crud.count_by_status(self._session),
            clients={
                "total": len(registered),
                "active": sum(1 for row in registered if row.is_active),
            },
            active_model_version=None if active is None else active[0],
        )

    def timeline(self, since: datetime, until: datetime, step: timedelta) -> Timeline:
        """Every client's predictions over time in steps (see app/services/timeline.py)."""
        return read_timeline(self._session, since, until, step)

    def _grouped(self, where: LogFilter, bys: tuple[str, ...]) -> dict[str, list[Group]]:
        return crud.grouped_over_many(self._session, bounded_range(where), bys)

    def groups(self, where: LogFilter, by: str) -> list[Group]:
        """Predictions per `by` over the filter's bounded range (see crud.grouped_over)."""
        return crud.grouped_over(self._session, bounded_range(where), by)

    def export_csv(self, where: LogFilter) -> Iterator[bytes]:
        """The filter's rows as RFC 4180 CSV, newest first, a piece at a time.

        Memory stays flat however many rows match: the rows come from a server-side
        cursor on a session of the export's own (the request's session is closed
        before a streamed body is sent), and each piece is sent and let go. On
        PostgreSQL the database formats the CSV itself (COPY ... TO STDOUT); on
        SQLite Python does, to the same bytes.
        """
        where = bounded_range(where)
        with self._sessions() as session:
            connection = session.connection()
            if connection.dialect.name == "postgresql":
                yield from crud.copy_csv(connection, where, formula_starts=_FORMULA_STARTS)
            else:
                yield from written_csv(session, where)


def written_csv(session: Session, where: LogFilter) -> Iterator[bytes]:
    """The export built row by row in Python (SQLite's path, and the reference the
    PostgreSQL COPY path is tested against)."""
    buffer = io.StringIO()
    # RFC 4180: CRLF line ends, quotes only where a field needs them.
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    yield _drain(buffer)
    for chunk in crud.stream(session, where, chunk_rows=EXPORT_CHUNK_ROWS):
        writer.writerows(_csv_row(row) for row in chunk)
        yield _drain(buffer)


def log_filter(query: LogFilters, client_id: str | None) -> LogFilter:
    """The rows a request's filters name, narrowed to `client_id` (None: every client's)."""
    return LogFilter(
        client_id=client_id,
        since=query.since,
        until=query.until,
        category=query.category,
        model_version=query.model_version,
        needs_review=query.needs_review,
    )


def bounded_range(where: LogFilter) -> LogFilter:
    """`where` with `until` (default now) and `since` (default 30 days before) set."""
    _check_order(where)
    until = where.until or datetime.now(UTC)
    since = where.since or until - timedelta(days=DEFAULT_RANGE_DAYS)
    if until - since > timedelta(days=MAX_RANGE_DAYS):
        raise BadQuery(
            "since", f"The range from since to until may span at most {MAX_RANGE_DAYS} days."
        )
    return LogFilter(
        client_id=where.client_id,
        since=since,
        until=until,
        category=where.category,
        model_version=where.model_version,
        needs_review=where.needs_review,
    )


def _check_order(where: LogFilter) -> None:
    if where.since is not None and where.until is not None and where.since >= where.until:
        raise BadQuery("until", "until must be later than since.")


def encode_cursor(row: PredictionLogEntry) -> str:
    """An opaque cursor for the rows older than `row`."""
    raw = f"{row.created_at.astimezone(UTC).isoformat()}|{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (created_at, id) a cursor holds; BadQuery when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        instant, _, row_id = raw.partition("|")
        created = datetime.fromisoformat(instant)
        identifier = int(row_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadQuery("cursor", "The cursor is not one this service issued.") from None
    if created.tzinfo is None or identifier < 0:
        raise BadQuery("cursor", "The cursor is not one this service issued.")
    return created, identifier


def neutralised(text: str) -> str:
    """`text` made inert for spreadsheets: a leading formula character gets a `'` before it."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv_row(row: PredictionLogEntry) -> tuple[object, ...]:
    return (
        row.created_at.isoformat(timespec="microseconds"),
        neutralised(row.client_id),
        neutralised(row.model_version),
        neutralised(row.product_name),
        neutralised(row.predicted_category),
        _float_text(row.score),
        "true" if row.needs_review else "false",
        "true" if row.in_scope else "false",
        row.request_id or "",
        row.item,
        _milliseconds_text(row.latency_ms),
    )


def _float_text(value: float) -> str:
    # PostgreSQL's shortest round-trip output: repr() but without a trailing ".0".
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def _milliseconds_text(value: float) -> str:
    # As PostgreSQL's round(value::numeric, 3): 15 significant digits, then half up.
    return str(Decimal(f"{value:.15g}").quantize(_MILLI, rounding=ROUND_HALF_UP))


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    return data


def _logged(row: PredictionLogEntry) -> LoggedPrediction:
    return LoggedPrediction(
        id=row.id,
        created_at=row.created_at,
        client_id=row.client_id,
        model_version=row.model_version,
        product_name=row.product_name,
        predicted_category=row.predicted_category,
        prediction_score=row.score,
        needs_review=row.needs_review,
        in_scope=row.in_scope,
        request_id=row.request_id,
        item=row.item,
        latency_ms=row.latency_ms,
    )


def _rates(group: Group) -> dict[str, float | int]:
    return {
        "count": group.count,
        "mean_score": round(group.mean_score, 6),
        "review_rate": round(group.needs_review / group.count, 6),
        "out_of_scope_rate": round(group.out_of_scope / group.count, 6),
    }


def _ratio(part: float, total: int) -> float | None:
    return round(part / total, 6) if total else None
