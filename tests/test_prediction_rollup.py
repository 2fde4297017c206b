"""Service-wide rollups of closed days: statistics read from them equal counting the
log rows, before and after a day is rolled up, after a late row lands on a rolled
day, and after the retention purge."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session

from app.core.metrics import setup_metrics
from app.crud import prediction_log as log_crud
from app.crud import prediction_rollup as rollup
from app.crud.prediction_log import Group, LogFilter
from app.db.database import open_database
from app.db.models import PredictionRolledDay, PredictionRollup
from app.services.prediction_log import PredictionLog, _purge_lock
from tests.support.databases import database_url_for

BYS = ("day", "category", "model_version", "client_id")
TODAY = datetime.now(UTC).date()
MIDNIGHT = datetime.combine(TODAY, time(), UTC)
# Five closed days and a part of today; the range starts inside its first day.
SINCE = MIDNIGHT - timedelta(days=5, hours=-7)


def _rows(count: int, first: datetime, last: datetime, seed: int) -> list[tuple[Any, ...]]:
    """Rows in the writer's queue form between two instants, batches among them."""
    draw = random.Random(seed)
    span = (last - first).total_seconds()
    rows: list[tuple[Any, ...]] = []
    while len(rows) < count:
        instant = first.timestamp() + draw.random() * span
        client = draw.choice(("svc-a", "svc-b", "svc-c"))
        version = draw.choice(("v1.0.0", "v1.1.0"))
        for item in range(draw.choice((1, 1, 4))):
            score = draw.random()
            category = draw.choice(("Susu", "Kopi", "Teh", "Roti"))
            rows.append(
                (instant, client, version, f"name {len(rows)}", category, score)
                + (score < 0.4, draw.random() > 0.15, None, item, 3.0)
            )
    return rows


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = database_url_for(tmp_path)
    open_database(url, migrate=True).dispose()
    engine = create_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def log(engine: Engine) -> PredictionLog:
    log = PredictionLog(engine, setup_metrics(), fraction=1.0, max_rows=10_000)
    log.write_batch(_rows(1500, SINCE - timedelta(days=1), datetime.now(UTC), seed=3))
    return log


def _counted(engine: Engine, where: LogFilter) -> dict[str, list[dict[str, Any]]]:
    """Every grouping, exactly (score sums rounded: the rollups add them in another order)."""

    def plain(groups: list[Group]) -> list[dict[str, Any]]:
        return [{**asdict(g), "score_sum": round(g.score_sum, 6)} for g in groups]

    with Session(engine) as session:
        many = log_crud.grouped_over_many(session, where, BYS)
        single = {by: log_crud.grouped_over(session, where, by) for by in BYS}
    assert {by: plain(g) for by, g in many.items()} == {by: plain(g) for by, g in single.items()}
    return {by: plain(groups) for by, groups in many.items()}


def _from_rows(engine: Engine, where: LogFilter) -> dict[str, list[dict[str, Any]]]:
    """The same groupings counted from the log rows alone."""
    found: dict[str, list[dict[str, Any]]] = {}
    with Session(engine) as session:
        for by in BYS:
            groups = log_crud.grouped(session, where, by)
            order = (lambda g: g.key) if by == "day" else (lambda g: (-g.count, g.key))
            found[by] = [
                {**asdict(g), "score_sum": round(g.score_sum, 6)} for g in sorted(groups, key=order)
            ]
    return found


def _rolled(engine: Engine) -> list[date]:
    with Session(engine) as session:
        return rollup.rolled_days(session, date.min, date.max)


FILTERS = [
    LogFilter(),
    LogFilter(category="Susu"),
    LogFilter(model_version="v1.1.0", needs_review=True),
    LogFilter(client_id="svc-b"),
]


@pytest.mark.parametrize("where", FILTERS, ids=["all", "category", "version+review", "client"])
def test_statistics_from_the_rollups_equal_counting_the_rows(
    engine: Engine, log: PredictionLog, where: LogFilter
) -> None:
    where = LogFilter(**{**asdict(where), "since": SINCE, "until": datetime.now(UTC)})
    expected = _from_rows(engine, where)
    assert _counted(engine, where) == expected
    assert log.roll_up(TODAY - timedelta(days=30)) >= 5
    assert _rolled(engine)[-1] < TODAY
    assert _counted(engine, where) == expected
    assert sum(g["count"] for g in expected["day"]) > 0


def test_today_and_the_grace_after_midnight_are_not_rolled_up(
    engine: Engine, log: PredictionLog
) -> None:
    yesterday = TODAY - timedelta(days=1)
    log.roll_up(TODAY - timedelta(days=30), now=MIDNIGHT + rollup.ROLLUP_GRACE / 2)
    assert yesterday not in _rolled(engine)
    assert TODAY - timedelta(days=2) in _rolled(engine)
    log.roll_up(TODAY - timedelta(days=30), now=MIDNIGHT + rollup.ROLLUP_GRACE)
    assert _rolled(engine)[-1] == yesterday
    # Nothing is rolled up twice.
    assert log.roll_up(TODAY - timedelta(days=30)) == 0


def test_a_late_row_on_a_rolled_day_is_counted_and_the_day_rolled_anew(
    engine: Engine, log: PredictionLog
) -> None:
    log.roll_up(TODAY - timedelta(days=30))
    late_day = TODAY - timedelta(days=3)
    assert late_day in _rolled(engine)
    where = LogFilter(since=SINCE, until=datetime.now(UTC))
    before = _counted(engine, where)
    noon = datetime.combine(late_day, time(12), UTC).timestamp()
    log.write_batch(
        [(noon, "svc-late", "v1.0.0", "late name", "Kopi", 0.2, True, False, None, 0, 3.0)]
    )
    assert late_day not in _rolled(engine)
    after = _counted(engine, where)
    assert after == _from_rows(engine, where)
    assert {"key": "svc-late"}.items() <= after["client_id"][-1].items()
    assert sum(g["count"] for g in after["day"]) == sum(g["count"] for g in before["day"]) + 1
    assert log.roll_up(TODAY - timedelta(days=30)) == 1
    assert late_day in _rolled(engine)
    assert _counted(engine, where) == after


def test_retention_purges_the_rollups_of_purged_days(engine: Engine) -> None:
    log = PredictionLog(engine, setup_metrics(), fraction=1.0, max_rows=1000)
    now = datetime.now(UTC)
    log.write_batch(_rows(40, now - timedelta(days=40), now - timedelta(days=38), seed=5))
    log.write_batch(_rows(40, now - timedelta(days=3), now - timedelta(days=2), seed=6))
    log.roll_up(TODAY - timedelta(days=60))
    assert min(_rolled(engine)) < TODAY - timedelta(days=30)
    log.purge_expired(30)
    assert min(_rolled(engine)) >= TODAY - timedelta(days=30)
    with Session(engine) as session:
        oldest = session.execute(select(func.min(PredictionRollup.day))).scalar_one()
        marked = session.execute(select(func.count()).select_from(PredictionRolledDay))
        assert oldest >= TODAY - timedelta(days=30)
        assert marked.scalar_one() == len(_rolled(engine))


def test_a_day_is_rolled_up_by_the_next_minutely_check_once_its_grace_is_over(
    engine: Engine, log: PredictionLog
) -> None:
    yesterday = TODAY - timedelta(days=1)
    during_grace = MIDNIGHT + rollup.ROLLUP_GRACE / 2
    # The hourly pass ran just after midnight, when yesterday was still too fresh.
    assert log.roll_up(TODAY - timedelta(days=30), now=during_grace) >= 4
    assert log.roll_up_pending(30, now=during_grace) == 0
    assert yesterday not in _rolled(engine)
    after_grace = MIDNIGHT + rollup.ROLLUP_GRACE
    assert log.roll_up_pending(30, now=after_grace) == 1
    assert _rolled(engine)[-1] == yesterday
    assert log.roll_up_pending(30, now=after_grace) == 0
    where = LogFilter(since=SINCE, until=datetime.now(UTC))
    assert _counted(engine, where) == _from_rows(engine, where)


def test_the_check_leaves_the_work_to_a_pass_that_holds_the_purge_lock(
    engine: Engine, log: PredictionLog
) -> None:
    # Held as another worker's (or replica's) hourly pass would hold it.
    with _purge_lock(engine) as acquired:
        assert acquired
        assert log.roll_up_pending(30) == 0
        assert _rolled(engine) == []
    assert log.roll_up_pending(30) >= 5
    assert _rolled(engine)[-1] == TODAY - timedelta(days=1)
