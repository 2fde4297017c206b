"""Service-wide rollups of the daily sums for closed days: what month-long statistics
read instead of every client's sums.

A day is rolled up once it has been over for ROLLUP_GRACE (the background
maintenance pass does it, app/services/prediction_log.py), into two small tables:
per version, category and flags (every client added together) and per client
(everything else added together). PredictionRolledDay lists the days whose
rollups are complete; statistics read those days from the rollups and every
other day from the daily sums, so a day that is not rolled up is merely slower,
never wrong.

The log is append-only, so a closed day changes only when a late row lands on
it (a writer that held its rows through a database outage). The writer then
calls `invalidate` in the same transaction as the rows, and the day is read from
the daily sums again until the next pass rolls it up anew. On PostgreSQL both
sides take one advisory lock, so a roll-up cannot read a day's sums just before
a late row commits and then mark the day complete; SQLite runs one writing
transaction at a time, and a roll-up reads and writes in single statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Date,
    Select,
    String,
    case,
    cast,
    delete,
    func,
    insert,
    null,
    select,
    text,
)
from sqlalchemy.orm import Session

from app.db.models import (
    PredictionClientRollup,
    PredictionDaily,
    PredictionRolledDay,
    PredictionRollup,
)

if TYPE_CHECKING:
    from app.crud.prediction_log import LogFilter

# How long after midnight (UTC) a day is left alone: rows queued just before
# midnight are still being written for a few hundred milliseconds. Short, because
# month-long statistics are slower until yesterday is rolled up, and safe, because
# a row that comes later still drops the day's rollups (`invalidate`).
ROLLUP_GRACE = timedelta(minutes=2)
# Any constant shared by every replica (the retention purge uses another).
_PG_ROLLUP_LOCK = 0x67726F6C

_DAILY = PredictionDaily
_ROLLUP = PredictionRollup
_CLIENTS = PredictionClientRollup
_ROLLED = PredictionRolledDay


def serves(where: LogFilter, bys: Sequence[str]) -> bool:
    """Whether the rollups can answer `where` grouped by each of `bys`.

    They hold no client next to a category, version or flag: one client's
    statistics, or per-client numbers under such a filter, need the daily sums.
    """
    if where.client_id is not None:
        return False
    filtered = (where.category, where.model_version, where.needs_review) != (None, None, None)
    return not ("client_id" in bys and filtered)


def rolled_days(session: Session, first_day: date, end_day: date) -> list[date]:
    """The rolled-up days from first_day to end_day (exclusive), oldest first."""
    query = (
        select(_ROLLED.day)
        .where(_ROLLED.day >= first_day, _ROLLED.day < end_day)
        .order_by(_ROLLED.day)
    )
    return list(session.scalars(query))


def part(where: LogFilter, days: Sequence[date], *, with_clients: bool) -> list[Select[Any]]:
    """Selects of the rollups over `days` in the column shape of the daily sums' part
    (day, category, model_version, client_id, n, score_sum, review, oos, requests).

    The version rollup has no client and the client rollup nothing but a client:
    the missing keys are NULL, and a grouping by such a key skips its NULL group,
    so each grouping counts every prediction once. Without `with_clients` only the
    version rollup is read.
    """
    count = _ROLLUP.predictions
    parts = [
        select(
            _ROLLUP.day.label("day"),
            _ROLLUP.predicted_category.label("category"),
            _ROLLUP.model_version.label("model_version"),
            cast(null(), String).label("client_id"),
            count.label("n"),
            _ROLLUP.score_sum.label("score_sum"),
            case((_ROLLUP.needs_review, count), else_=0).label("review"),
            case((_ROLLUP.in_scope, 0), else_=count).label("oos"),
            _ROLLUP.requests.label("requests"),
        ).where(_ROLLUP.day.in_(days), *where.key_conditions(_ROLLUP))
    ]
    if with_clients:
        parts.append(
            select(
                cast(null(), Date).label("day"),
                cast(null(), String).label("category"),
                cast(null(), String).label("model_version"),
                _CLIENTS.client_id.label("client_id"),
                _CLIENTS.predictions.label("n"),
                _CLIENTS.score_sum.label("score_sum"),
                _CLIENTS.needs_review.label("review"),
                _CLIENTS.out_of_scope.label("oos"),
                _CLIENTS.requests.label("requests"),
            ).where(_CLIENTS.day.in_(days))
        )
    return parts


def grouped(where: LogFilter, by: str, days: Sequence[date]) -> Select[Any]:
    """Per `by` over the rollups of `days`, in the daily sums' grouped shape
    (key, count, score sum, review, out of scope, requests)."""
    if by == "client_id":
        key: ColumnElement[Any] = _CLIENTS.client_id.expression
        return (
            select(
                key,
                func.sum(_CLIENTS.predictions),
                func.sum(_CLIENTS.score_sum),
                func.sum(_CLIENTS.needs_review),
                func.sum(_CLIENTS.out_of_scope),
                func.sum(_CLIENTS.requests),
            )
            .where(_CLIENTS.day.in_(days))
            .group_by(key)
        )
    columns: dict[str, ColumnElement[Any]] = {
        "day": _ROLLUP.day.expression,
        "category": _ROLLUP.predicted_category.expression,
        "model_version": _ROLLUP.model_version.expression,
    }
    key = columns[by]
    count = _ROLLUP.predictions
    return (
        select(
            key,
            func.sum(count),
            func.sum(_ROLLUP.score_sum),
            func.sum(case((_ROLLUP.needs_review, count), else_=0)),
            func.sum(case((_ROLLUP.in_scope, 0), else_=count)),
            func.sum(_ROLLUP.requests),
        )
        .where(_ROLLUP.day.in_(days), *where.key_conditions(_ROLLUP))
        .group_by(key)
    )


def pending_day(
    connection: Connection, first_kept: date, now: datetime | None = None
) -> date | None:
    """The oldest closed day from `first_kept` on that has sums and no rollups yet.

    Cheap enough to ask every minute: one read of the (at most retention-days)
    markers, then one indexed look-up of the first unmarked day with sums. Days
    without traffic are never marked, so they are looked up each time.
    """
    now = now or datetime.now(UTC)
    closed_before = (now - ROLLUP_GRACE).date()
    marked = set(
        connection.scalars(
            select(_ROLLED.day).where(_ROLLED.day >= first_kept, _ROLLED.day < closed_before)
        )
    )
    unmarked = [
        day
        for day in (
            first_kept + timedelta(days=n) for n in range((closed_before - first_kept).days)
        )
        if day not in marked
    ]
    if not unmarked:
        return None
    # An IN list, not a range: a range would walk every row of the marked days.
    return connection.execute(
        select(_DAILY.day).where(_DAILY.day.in_(unmarked)).order_by(_DAILY.day).limit(1)
    ).scalar_one_or_none()


def roll_up_next(connection: Connection, first_kept: date, now: datetime | None = None) -> bool:
    """Roll up the oldest closed day from `first_kept` on that has sums and is not
    rolled up yet; False when there is none. One day per call bounds the work."""
    now = now or datetime.now(UTC)
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_ROLLUP_LOCK})
    day = pending_day(connection, first_kept, now)
    if day is None:
        return False
    _drop(connection, [day])
    one_day = _DAILY.day == day
    count = _DAILY.predictions
    keys = (
        _DAILY.day,
        _DAILY.model_version,
        _DAILY.predicted_category,
        _DAILY.needs_review,
        _DAILY.in_scope,
    )
    connection.execute(
        insert(_ROLLUP).from_select(
            [
                "day",
                "model_version",
                "predicted_category",
                "needs_review",
                "in_scope",
                "predictions",
                "requests",
                "score_sum",
            ],
            select(*keys, func.sum(count), func.sum(_DAILY.requests), func.sum(_DAILY.score_sum))
            .where(one_day)
            .group_by(*keys),
        )
    )
    connection.execute(
        insert(_CLIENTS).from_select(
            [
                "day",
                "client_id",
                "predictions",
                "requests",
                "score_sum",
                "needs_review",
                "out_of_scope",
            ],
            select(
                _DAILY.day,
                _DAILY.client_id,
                func.sum(count),
                func.sum(_DAILY.requests),
                func.sum(_DAILY.score_sum),
                func.sum(cast(case((_DAILY.needs_review, count), else_=0), BigInteger)),
                func.sum(cast(case((_DAILY.in_scope, 0), else_=count), BigInteger)),
            )
            .where(one_day)
            .group_by(_DAILY.day, _DAILY.client_id),
        )
    )
    connection.execute(insert(_ROLLED).values(day=day, rolled_at=now))
    return True


def invalidate(connection: Connection, days: Sequence[date]) -> None:
    """Forget the rollups of `days`: the writer has just added rows to them."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_ROLLUP_LOCK})
    _drop(connection, days)


def purge_before(connection: Connection, first_kept: date) -> int:
    """Delete the rollups of days before `first_kept` (a few rows per day)."""
    return _drop(connection, None, before=first_kept)


def _drop(
    connection: Connection, days: Sequence[date] | None, *, before: date | None = None
) -> int:
    dropped = 0
    for table in (_ROLLED, _ROLLUP, _CLIENTS):
        column = table.day
        condition = column.in_(days) if days is not None else column < before
        dropped += int(connection.execute(delete(table).where(condition)).rowcount)
    return dropped
