"""SQL for the prediction timeline: the log summed per five-minute slot and version.

The console draws predictions, review and out-of-scope rates, the score
histogram and request latency over time from it. A month is 8,640 slots per
version, so any range the console offers is summed from a few thousand rows
instead of the millions of log rows behind them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Connection, delete, func, select, type_coerce
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.orm import Session

from app.crud.prediction_log import sqlite_insert_values
from app.db.base import LogInstant, epoch_micros
from app.db.models import (
    LATENCY_BINS,
    LATENCY_BOUNDS_MS,
    SCORE_BINS,
    TIMELINE_SLOT_SECONDS,
    prediction_timeline,
)

_T = prediction_timeline
_KEY = ("slot", "model_version")
_COUNTS = (
    "predictions",
    "requests",
    "needs_review",
    "out_of_scope",
    "score_sum",
    *(f"score_{i}" for i in range(SCORE_BINS)),
    *(f"latency_{i}" for i in range(LATENCY_BINS)),
)
_SCORES_AT = 5
_LATENCIES_AT = _SCORES_AT + SCORE_BINS


@dataclass(frozen=True)
class Step:
    """One version's sums over one step of a chart (a slot, an hour or a day)."""

    start: datetime
    model_version: str
    predictions: int
    requests: int
    needs_review: int
    out_of_scope: int
    score_sum: float
    # Per score bin (tenths) and per latency bin (LATENCY_BOUNDS_MS), of requests.
    scores: tuple[int, ...]
    latencies: tuple[int, ...]


def slot_of(instant: datetime) -> datetime:
    """The start of the five-minute slot `instant` falls in."""
    seconds = int(instant.timestamp())
    return datetime.fromtimestamp(seconds - seconds % TIMELINE_SLOT_SECONDS, UTC)


def timeline_sums(rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Log rows in the writer's queue form (times as epoch seconds) summed per slot and
    version, as rows of (slot, version, *counts), in key order so that two workers
    upserting the same keys lock them in the same order."""
    sums: dict[tuple[int, str], list[Any]] = {}
    top_bin = SCORE_BINS - 1
    last: tuple[float, str] | None = None
    entry: list[Any] = []
    # A batch request's rows come together with one time and version: its entry is
    # looked up once (the writer pays this per logged row, on the workers' CPU).
    for seconds, _, version, _, _, score, review, scoped, _, item, latency in rows:
        if last is None or seconds != last[0] or version != last[1]:
            last = (seconds, version)
            key = (int(seconds) // TIMELINE_SLOT_SECONDS, version)
            found = sums.get(key)
            if found is None:
                found = sums[key] = [0] * len(_COUNTS)
                found[4] = 0.0
            entry = found
        if review:
            entry[2] += 1
        if not scoped:
            entry[3] += 1
        entry[4] += score
        # score * 10 as SQL computes it in the migration's backfill, so both agree.
        tenth = int(score * SCORE_BINS)
        entry[_SCORES_AT + (tenth if tenth < top_bin else top_bin)] += 1
        if item == 0:
            # A batch's rows share its latency: it is counted once, per request.
            entry[1] += 1
            entry[_LATENCIES_AT + bisect_left(LATENCY_BOUNDS_MS, latency)] += 1
    for counts in sums.values():
        counts[0] = sum(counts[_SCORES_AT:_LATENCIES_AT])
    return [
        (datetime.fromtimestamp(slot * TIMELINE_SLOT_SECONDS, UTC), version, *counts)
        for (slot, version), counts in sorted(sums.items())
    ]


def add_to_timeline(connection: Connection, sums: Sequence[tuple[Any, ...]]) -> None:
    """Add a batch's sums (from `timeline_sums`): one upsert statement."""
    if not sums:
        return
    names = (*_KEY, *_COUNTS)
    if connection.dialect.name == "sqlite":
        updates = ", ".join(f"{name} = {name} + excluded.{name}" for name in _COUNTS)
        sqlite_insert_values(
            connection,
            f"INSERT INTO prediction_timeline ({', '.join(names)})",
            [(epoch_micros(row[0]), *row[1:]) for row in sums],
            f"ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET {updates}",
        )
        return
    statement = postgresql_insert(_T)
    statement = statement.on_conflict_do_update(
        index_elements=list(_KEY),
        set_={name: _T.c[name] + statement.excluded[name] for name in _COUNTS},
    )
    connection.execute(statement, [dict(zip(names, row, strict=True)) for row in sums])


def purge_timeline_before(connection: Connection, cutoff: datetime) -> int:
    """Delete the slots that end by `cutoff`, at most a day of them per call (bounded
    work); the slot `cutoff` falls in still sums rows the log keeps."""
    cutoff = slot_of(cutoff)
    oldest = connection.execute(
        select(func.min(_T.c.slot)).where(_T.c.slot < cutoff)
    ).scalar_one_or_none()
    if oldest is None:
        return 0
    if isinstance(oldest, int):
        # SQLite hands the raw microseconds back to an aggregate.
        oldest = LogInstant().process_result_value(oldest, connection.dialect)
    assert isinstance(oldest, datetime)
    end = min(cutoff, oldest + timedelta(days=1))
    result = connection.execute(delete(_T).where(_T.c.slot < end))
    return max(int(result.rowcount), 1)


def steps(session: Session, since: datetime, until: datetime, step_seconds: int) -> list[Step]:
    """Per version, the sums of the slots from `since`'s slot up to `until`, in steps
    of `step_seconds` (a multiple of the slot, dividing a day) counted from UTC
    midnight; oldest first."""
    if step_seconds % TIMELINE_SLOT_SECONDS or 86400 % step_seconds:
        raise ValueError(f"a step of {step_seconds} s does not divide a day into slots")
    start = _step_start(session, step_seconds)
    query = (
        select(
            start,
            _T.c.model_version,
            *(func.sum(_T.c[name]) for name in _COUNTS),
        )
        .where(_T.c.slot >= slot_of(since), _T.c.slot < until)
        .group_by(start, _T.c.model_version)
        .order_by(start, _T.c.model_version)
    )
    found = []
    for row in session.execute(query):
        counts = row[2:]
        found.append(
            Step(
                start=row[0],
                model_version=str(row[1]),
                predictions=int(counts[0]),
                requests=int(counts[1]),
                needs_review=int(counts[2]),
                out_of_scope=int(counts[3]),
                score_sum=float(counts[4]),
                scores=tuple(int(v) for v in counts[_SCORES_AT:_LATENCIES_AT]),
                latencies=tuple(int(v) for v in counts[_LATENCIES_AT:]),
            )
        )
    return found


def _step_start(session: Session, step_seconds: int) -> ColumnElement[datetime]:
    if session.get_bind().dialect.name == "sqlite":
        # Integer microseconds since the epoch, which began at a UTC midnight.
        micros = type_coerce(_T.c.slot, BigInteger)
        step = step_seconds * 1_000_000
        return type_coerce(micros - micros % step, LogInstant).label("start")
    epoch = func.extract("epoch", _T.c.slot)
    return type_coerce(
        func.to_timestamp(func.floor(epoch / step_seconds) * step_seconds), LogInstant
    ).label("start")
