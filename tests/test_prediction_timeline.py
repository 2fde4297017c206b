"""The prediction timeline: the log summed per five-minute slot, and what the console
charts from it, checked against counting the rows themselves."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.core.metrics import setup_metrics
from app.crud import prediction_log as log_crud
from app.crud import prediction_timeline as crud
from app.db.database import open_database
from app.db.migrations import _config
from app.db.models import LATENCY_BOUNDS_MS, prediction_timeline
from app.services.prediction_log import PredictionLog
from app.services.timeline import latency_quantile, read_timeline
from tests.support.databases import database_url_for

START = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)
# Latencies on, just above and between the bins' bounds.
LATENCIES = (0.2, 1.0, 1.0001, 4.9, 7.5, 12.0, 49.99, 50.0, 180.0, 999.0, 2000.0, 2400.0)


def _rows(count: int = 600) -> list[tuple[Any, ...]]:
    """Rows in the writer's queue form over about a day, batches among them, with
    scores on the tenths' edges and latencies on the bins' bounds."""
    draw = random.Random(7)
    rows: list[tuple[Any, ...]] = []
    while len(rows) < count:
        instant = (START + timedelta(seconds=draw.randrange(0, 26 * 3600))).timestamp()
        version = draw.choice(("v1.0.0", "v1.1.0"))
        latency = draw.choice(LATENCIES)
        for item in range(draw.choice((1, 1, 3))):
            score = draw.choice((0.0, 0.1, 0.3, 0.7, 0.89999, 0.9, 0.95, 1.0, draw.random()))
            rows.append(
                (instant, "svc", version, f"name {len(rows)}", "Susu", score)
                + (score < 0.5, draw.random() > 0.2, None, item, latency)
            )
    return rows


def _score_bin(score: float) -> int:
    # The tenth a person reads the score in: 0.3 is in 0.3-0.4, whatever its binary value.
    return min(9, int(Decimal(repr(score)) * 10))


def _latency_bin(latency: float) -> int:
    return sum(1 for bound in LATENCY_BOUNDS_MS if latency > bound)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    url = database_url_for(tmp_path)
    open_database(url, migrate=True).dispose()
    yield url


@pytest.mark.parametrize("step", [timedelta(minutes=5), timedelta(hours=1), timedelta(days=1)])
def test_timeline_steps_equal_counting_the_rows(database: str, step: timedelta) -> None:
    engine = create_engine(database)
    rows = _rows()
    log = PredictionLog(engine, setup_metrics(), fraction=1.0, max_rows=1000)
    # Two batches that share slots: the second adds to the first's sums.
    log.write_batch(rows[:250])
    log.write_batch(rows[250:])
    since = START + timedelta(hours=1, minutes=7)
    until = START + timedelta(hours=23, minutes=31)
    try:
        with Session(engine) as session:
            timeline = read_timeline(session, since, until, step)
    finally:
        engine.dispose()
    seconds = int(step.total_seconds())
    first = int(since.timestamp()) // 300 * 300 // seconds * seconds
    assert timeline.since == datetime.fromtimestamp(first, UTC)
    covered = [r for r in rows if first <= r[0] < until.timestamp()]
    by_step = Counter(int(r[0]) // seconds * seconds for r in covered)
    shown = {int(s.start.timestamp()): s.predictions for s in timeline.steps}
    # Every step is there, empty ones too, and holds its rows' count.
    assert sorted(shown) == list(range(first, int(until.timestamp()), seconds))
    assert {k: v for k, v in shown.items() if v} == dict(by_step)
    per_version = Counter((int(r[0]) // seconds * seconds, r[2]) for r in covered)
    assert {
        (int(s.start.timestamp()), v): n for s in timeline.steps for v, n in s.per_version.items()
    } == dict(per_version)
    assert sum(s.needs_review for s in timeline.steps) == sum(r[6] for r in covered)
    assert sum(s.out_of_scope for s in timeline.steps) == sum(not r[7] for r in covered)
    assert sum(s.score_sum for s in timeline.steps) == pytest.approx(sum(r[5] for r in covered))
    scores = Counter(_score_bin(r[5]) for r in covered)
    assert timeline.scores == tuple(scores.get(i, 0) for i in range(10))
    # Latency is a request's: a batch counts once, at its first name.
    requests = [r for r in covered if r[9] == 0]
    latencies = Counter(_latency_bin(r[10]) for r in requests)
    assert timeline.latencies == tuple(
        latencies.get(i, 0) for i in range(len(LATENCY_BOUNDS_MS) + 1)
    )
    assert timeline.requests == len(requests)
    assert timeline.versions == ["v1.0.0", "v1.1.0"]


def test_latency_estimates_lie_in_the_true_percentiles_bin() -> None:
    draw = random.Random(3)
    for _ in range(50):
        latencies = sorted(draw.lognormvariate(2.5, 1.2) for _ in range(draw.randrange(1, 400)))
        bins = [0] * (len(LATENCY_BOUNDS_MS) + 1)
        for latency in latencies:
            bins[_latency_bin(latency)] += 1
        for q in (0.5, 0.99):
            true = latencies[max(0, math.ceil(q * len(latencies)) - 1)]
            estimate = latency_quantile(bins, q)
            assert estimate is not None
            b = _latency_bin(true)
            if b == len(LATENCY_BOUNDS_MS):
                assert estimate == math.inf
            else:
                low = LATENCY_BOUNDS_MS[b - 1] if b else 0.0
                assert low <= estimate <= LATENCY_BOUNDS_MS[b], (q, true, estimate)
    assert latency_quantile([0] * 19, 0.5) is None


def test_the_migration_fills_the_timeline_from_the_rows_already_logged(tmp_path: Path) -> None:
    url = database_url_for(tmp_path)
    engine = create_engine(url)
    config = _config()
    rows = _rows(300)
    stored = [(datetime.fromtimestamp(r[0], UTC), *r[1:]) for r in rows]
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0007")
            log_crud.insert_rows(connection, stored)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0008")
            found = connection.execute(
                select(prediction_timeline).order_by(
                    prediction_timeline.c.slot, prediction_timeline.c.model_version
                )
            ).all()
    finally:
        engine.dispose()
    expected = crud.timeline_sums(rows)
    assert len(found) == len(expected) > 10
    for got, want in zip(found, expected, strict=True):
        assert got[0] == want[0] and got[1] == want[1]
        assert tuple(got[2:6]) == tuple(want[2:6])
        assert got[6] == pytest.approx(want[6])
        assert tuple(got[7:]) == tuple(want[7:])


def test_retention_purges_old_slots_and_keeps_the_cutoffs(database: str) -> None:
    engine = create_engine(database)
    log = PredictionLog(engine, setup_metrics(), fraction=1.0, max_rows=1000)
    now = datetime.now(UTC)
    times = [now - timedelta(days=d) for d in (45, 44, 31, 2)]
    log.write_batch(
        [(t.timestamp(), "svc", "v1", "n", "Susu", 0.5, False, True, None, 0, 1.0) for t in times]
    )
    assert log.purge_expired(30) == 3
    with engine.connect() as connection:
        slots = connection.execute(select(prediction_timeline.c.slot)).scalars().all()
    engine.dispose()
    assert slots == [crud.slot_of(times[-1])]
