"""The console's overview: what the model did over the last hour, day or month.

Totals and the per-category, per-version and per-client tables are exact counts
of the prediction log (its daily sums for whole days). The charts over time,
the score histogram and request latency come from the prediction timeline
(five-minute sums; latency percentiles estimated within their bins, see
app/services/timeline.py). Every chart's numbers are on the page as a table and
downloadable as CSV from the same counts the page shows.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from cachetools import TTLCache
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from app.api import console_charts as charts
from app.api.deps import PredictionHistoryDep
from app.api.routes.console import ConsoleUserDep, message_page, page, redirect_to
from app.crud.prediction_log import LogFilter
from app.db.models import LATENCY_BOUNDS_MS, SCORE_BINS
from app.schemas.history import AdminStats, GroupStats
from app.services.prediction_history import PredictionHistory, neutralised
from app.services.timeline import Timeline

router = APIRouter(prefix="/console", include_in_schema=False)

OVERVIEW_CACHE_SECONDS = 15


@dataclass(frozen=True)
class Range:
    label: str
    span: timedelta
    # One bar or point of the charts over time.
    step: timedelta
    step_label: str


RANGES: dict[str, Range] = {
    "hour": Range("Last hour", timedelta(hours=1), timedelta(minutes=5), "5 minutes"),
    "day": Range("Last 24 hours", timedelta(days=1), timedelta(hours=1), "hour"),
    "30d": Range("Last 30 days", timedelta(days=30), timedelta(days=1), "UTC day"),
}
CSV_CHARTS = ("timeline", "scores", "latency", "categories", "versions", "clients")


@dataclass(frozen=True)
class Counted:
    stats: AdminStats
    timeline: Timeline
    at: datetime


@router.get("", response_class=HTMLResponse)
async def overview(
    request: Request,
    user: ConsoleUserDep,
    history: PredictionHistoryDep,
    chosen: Annotated[str, Query(alias="range", max_length=16)] = "day",
) -> Response:
    """Predictions, scores, review and out-of-scope rates and latency over a range."""
    if user is None:
        return redirect_to(request, "/console/sign-in")
    # An allow-list: anything else is the default range, never an unbounded read.
    chosen = chosen if chosen in RANGES else "day"
    counted = await _counted(request, history, chosen)
    return page(
        request,
        "overview.html",
        user=user,
        title="Overview",
        ranges=[(key, r.label) for key, r in RANGES.items()],
        chosen=chosen,
        range=RANGES[chosen],
        stats=counted.stats,
        timeline=counted.timeline,
        counted_at=counted.at,
        charts=_charts(counted.timeline, RANGES[chosen]),
        latency_bins=_latency_rows(counted.timeline),
        inf=math.inf,
    )


@router.get("/overview.csv")
async def overview_csv(
    request: Request,
    user: ConsoleUserDep,
    history: PredictionHistoryDep,
    chart: Annotated[str, Query(max_length=16)] = "timeline",
    chosen: Annotated[str, Query(alias="range", max_length=16)] = "day",
) -> Response:
    """The numbers of one chart or table of the overview, as RFC 4180 CSV."""
    if user is None:
        return redirect_to(request, "/console/sign-in")
    if chosen not in RANGES or chart not in CSV_CHARTS:
        return message_page(
            request,
            user,
            404,
            "No such table",
            "The overview has no such table or range.",
            "/console",
        )
    if chart == "clients" and not user.is_admin:
        return message_page(
            request, user, 403, "Admins only", "Only admins see the clients' usage.", "/console"
        )
    counted = await _counted(request, history, chosen)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in _csv_rows(chart, counted):
        writer.writerow([neutralised(cell) if isinstance(cell, str) else cell for cell in row])
    stamp = counted.at.strftime("%Y%m%dT%H%M%SZ")
    return Response(
        buffer.getvalue().encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="garoupa-{chart}-{chosen}-{stamp}.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def _counted(request: Request, history: PredictionHistory, key: str) -> Counted:
    """The range's statistics and timeline, and when they were counted.

    Ranges of days are kept for OVERVIEW_CACHE_SECONDS per worker: over a month of
    a busy log they take a few hundred milliseconds to count (docs/performance.md),
    and a dashboard reloaded by several people need not count them each time.
    Shorter ranges are counted afresh on every load.
    """
    cache: TTLCache[str, Counted] | None = getattr(request.app.state, "console_overview", None)
    if cache is None:
        cache = TTLCache(maxsize=len(RANGES), ttl=OVERVIEW_CACHE_SECONDS)
        request.app.state.console_overview = cache
    chosen = RANGES[key]
    kept = chosen.span >= timedelta(days=2)
    if kept:
        cached = cache.get(key)
        if cached is not None:
            return cached
    until = datetime.now(UTC)
    since = until - chosen.span
    if kept:
        # Whole UTC days back to midnight: those come from the daily sums, and only
        # today's part is counted from the log rows (docs/performance.md).
        since = until.replace(hour=0, minute=0, second=0, microsecond=0) - chosen.span
        since += timedelta(days=1)

    def count() -> Counted:
        stats = history.overview(LogFilter(since=since, until=until))
        timeline = history.timeline(since, until, chosen.step)
        return Counted(stats, timeline, datetime.now(UTC))

    counted = await run_in_threadpool(count)
    if kept:
        cache[key] = counted
    return counted


def _step_text(start: datetime, step: timedelta) -> str:
    return start.strftime("%Y-%m-%d" if step >= timedelta(days=1) else "%Y-%m-%d %H:%M")


def _charts(timeline: Timeline, chosen: Range) -> dict[str, Any]:
    labels = [_step_text(s.start, chosen.step) for s in timeline.steps]
    classes = charts.series_classes(timeline.versions)
    predictions = charts.stacked_bars(
        labels,
        [[(s.per_version.get(v, 0), v) for v in timeline.versions] for s in timeline.steps],
    )
    rates = charts.lines(
        len(timeline.steps),
        [
            ("Needs review", [s.review_rate for s in timeline.steps]),
            ("Out of scope", [s.out_of_scope_rate for s in timeline.steps]),
        ],
        top=1.0,
    )
    latency = charts.lines(
        len(timeline.steps),
        [
            ("p50", [s.latency_p50 for s in timeline.steps]),
            ("p99", [s.latency_p99 for s in timeline.steps]),
        ],
    )
    scores = charts.histogram(_score_labels(), timeline.scores)
    return {
        "labels": labels,
        "classes": classes,
        "predictions": predictions,
        "rates": rates,
        "latency": latency,
        "scores": scores,
        "score_labels": _score_labels(),
    }


def _score_labels() -> list[str]:
    return [
        f"{i / SCORE_BINS:.1f}–{(i + 1) / SCORE_BINS:.1f}{']' if i == SCORE_BINS - 1 else ')'}"
        for i in range(SCORE_BINS)
    ]


def _latency_rows(timeline: Timeline) -> list[tuple[str, int]]:
    rows = []
    for i, count in enumerate(timeline.latencies):
        low = LATENCY_BOUNDS_MS[i - 1] if i else 0
        text = (
            f"above {low:g} ms"
            if i == len(LATENCY_BOUNDS_MS)
            else f"{low:g}–{LATENCY_BOUNDS_MS[i]:g} ms"
        )
        rows.append((text, count))
    return rows


def _ms(value: float | None) -> str:
    if value is None:
        return ""
    return "inf" if math.isinf(value) else f"{value:.1f}"


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _csv_rows(chart: str, counted: Counted) -> list[list[Any]]:
    timeline, p = counted.timeline, counted.stats.predictions
    if chart == "timeline":
        head = ["step_start_utc", "predictions", *timeline.versions]
        head += ["requests", "mean_score", "review_rate", "out_of_scope_rate"]
        head += ["latency_p50_ms_estimated", "latency_p99_ms_estimated"]
        return [head] + [
            [
                s.start.isoformat(),
                s.predictions,
                *(s.per_version.get(v, 0) for v in timeline.versions),
                s.requests,
                _rate(s.mean_score),
                _rate(s.review_rate),
                _rate(s.out_of_scope_rate),
                _ms(s.latency_p50),
                _ms(s.latency_p99),
            ]
            for s in timeline.steps
        ]
    if chart == "scores":
        return [["score_from", "score_to", "predictions"]] + [
            [f"{i / SCORE_BINS:.1f}", f"{(i + 1) / SCORE_BINS:.1f}", count]
            for i, count in enumerate(timeline.scores)
        ]
    if chart == "latency":
        return [["latency_above_ms", "latency_at_most_ms", "requests"]] + [
            [
                f"{LATENCY_BOUNDS_MS[i - 1]:g}" if i else "0",
                f"{LATENCY_BOUNDS_MS[i]:g}" if i < len(LATENCY_BOUNDS_MS) else "",
                count,
            ]
            for i, count in enumerate(timeline.latencies)
        ]
    groups: list[tuple[str, GroupStats]]
    if chart == "categories":
        groups = [(c.category, c) for c in p.per_category]
    elif chart == "versions":
        groups = [(v.model_version, v) for v in p.per_model_version]
    else:
        groups = [(c.client_id, c) for c in counted.stats.per_client]
    key = {"categories": "category", "versions": "model_version"}.get(chart, "client_id")
    head = [key, "predictions", "mean_score", "review_rate", "out_of_scope_rate"]
    return [head] + [
        [name, g.count, _rate(g.mean_score), _rate(g.review_rate), _rate(g.out_of_scope_rate)]
        for name, g in groups
    ]
