"""What the console charts over time: the prediction timeline in chart steps.

Counts are exact (sums of the log's rows). Latency percentiles are estimated
from the timeline's latency bins, as Prometheus' histogram_quantile does: the
rank is found in its bin and placed linearly between the bin's bounds, so an
estimate is never further from the true value than its bin is wide (the bins
are in app/db/models.py, 25-50 % wide).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.crud import prediction_timeline as crud
from app.db.models import LATENCY_BINS, LATENCY_BOUNDS_MS, SCORE_BINS


@dataclass(frozen=True)
class ChartStep:
    """Every version's predictions, and the rates over all of them, in one step."""

    start: datetime
    per_version: dict[str, int]
    predictions: int
    requests: int
    needs_review: int
    out_of_scope: int
    score_sum: float
    latencies: tuple[int, ...]

    @property
    def review_rate(self) -> float | None:
        return self.needs_review / self.predictions if self.predictions else None

    @property
    def out_of_scope_rate(self) -> float | None:
        return self.out_of_scope / self.predictions if self.predictions else None

    @property
    def mean_score(self) -> float | None:
        return self.score_sum / self.predictions if self.predictions else None

    @property
    def latency_p50(self) -> float | None:
        return latency_quantile(self.latencies, 0.5)

    @property
    def latency_p99(self) -> float | None:
        return latency_quantile(self.latencies, 0.99)


@dataclass(frozen=True)
class Timeline:
    """A range in chart steps (empty steps included, oldest first) and its totals."""

    since: datetime
    until: datetime
    step: timedelta
    steps: list[ChartStep]
    versions: list[str]
    scores: tuple[int, ...] = field(default=(0,) * SCORE_BINS)
    latencies: tuple[int, ...] = field(default=(0,) * LATENCY_BINS)

    @property
    def requests(self) -> int:
        return sum(self.latencies)

    @property
    def latency_p50(self) -> float | None:
        return latency_quantile(self.latencies, 0.5)

    @property
    def latency_p99(self) -> float | None:
        return latency_quantile(self.latencies, 0.99)


def read_timeline(session: Session, since: datetime, until: datetime, step: timedelta) -> Timeline:
    """The whole steps of `step` (five minutes, an hour or a day, counted from UTC
    midnight) that cover since..until: the first may begin before `since`."""
    seconds = int(step.total_seconds())
    first = crud.slot_of(since)
    first -= timedelta(seconds=int(first.timestamp()) % seconds)
    rows = crud.steps(session, first, until, seconds)
    by_start: dict[datetime, list[crud.Step]] = {}
    for row in rows:
        by_start.setdefault(row.start, []).append(row)
    steps = []
    start = first
    while start < until:
        steps.append(_merged(start, by_start.get(start, [])))
        start += step
    return Timeline(
        since=first,
        until=until,
        step=step,
        steps=steps,
        versions=sorted({row.model_version for row in rows}),
        scores=_summed([row.scores for row in rows], SCORE_BINS),
        latencies=_summed([row.latencies for row in rows], LATENCY_BINS),
    )


def latency_quantile(bins: Sequence[int], q: float) -> float | None:
    """The q-quantile of the latencies counted in `bins`, in milliseconds; None with no
    requests, infinity when it lies above the last bound."""
    total = sum(bins)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(bins):
        if count and seen + count >= rank:
            if i == len(LATENCY_BOUNDS_MS):
                return math.inf
            low = 0.0 if i == 0 else float(LATENCY_BOUNDS_MS[i - 1])
            high = float(LATENCY_BOUNDS_MS[i])
            return low + (high - low) * (rank - seen) / count
        seen += count
    return math.inf


def _merged(start: datetime, rows: list[crud.Step]) -> ChartStep:
    return ChartStep(
        start=start,
        per_version={row.model_version: row.predictions for row in rows},
        predictions=sum(row.predictions for row in rows),
        requests=sum(row.requests for row in rows),
        needs_review=sum(row.needs_review for row in rows),
        out_of_scope=sum(row.out_of_scope for row in rows),
        score_sum=sum(row.score_sum for row in rows),
        latencies=_summed([row.latencies for row in rows], LATENCY_BINS),
    )


def _summed(parts: list[tuple[int, ...]], width: int) -> tuple[int, ...]:
    return tuple(sum(part[i] for part in parts) for i in range(width))
