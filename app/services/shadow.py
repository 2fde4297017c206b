"""Shadow evaluation: a candidate version scores a share of live traffic beside the
active one, off the request path, and every worker adds what it compared to one
report in the database.

A prediction route hands its answers to `ShadowEvaluator.offer`, which samples
them into a bounded queue and returns: the served answer is already made and
nothing here can change it. A thread per worker scores the queue with the
candidate in chunks and keeps a tally (flips, score bins, review and
out-of-scope counts, the candidate's scoring time), which it adds to the run's
totals once a second (app/crud/shadow.py). Every worker learns of a run at its
registry check (`follow`), loads the candidate as it would to serve it, and
stops when the run ends: by `DELETE`, by activating any version, or by the
promotion rules (AUTO_PROMOTE).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.errors import Conflict, GaroupaError, NotFound
from app.core.metrics import Metrics
from app.crud import shadow as crud
from app.crud.shadow import Tally
from app.db.models import ShadowRun
from app.ml.artifacts import ArtifactError
from app.services.audit import AuditTrail
from app.services.models import ModelRegistry, activate_audited
from app.services.prediction import Predictions, PredictionService, ServingModel, review_threshold

logger = logging.getLogger(__name__)

ACTIVE, CANDIDATE = "active", "candidate"
SCORE_BINS = 10
# Upper bounds of the candidate's scoring time per item, in microseconds; the last
# bin holds everything slower.
LATENCY_BOUNDS_US = (10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000)
EXAMPLES_PER_FLIP = 3
# Sampled items a worker holds; past this they are skipped and counted in the log,
# so a slow candidate never grows a worker's memory.
QUEUE_ITEMS = 20_000
CHUNK_ITEMS = 256
WRITE_SECONDS = 1.0
_RETRY_LOAD_SECONDS = 30.0
_PROMOTION_CHECK_SECONDS = 10.0
AUTO_PROMOTE_ACTOR = "auto-promote"


class ShadowNotFound(NotFound):
    """No shadow run of this version (404)."""


@dataclass(frozen=True)
class _Watch:
    """The open run as this worker follows it."""

    run_id: int
    active_version: str
    sample_rate: float
    candidate: ServingModel


# (watch, name, category, score, needs_review, in_scope, min_score) as served.
_Item = tuple[_Watch, str, str, float, bool, bool, float | None]


def score_bin(score: float) -> int:
    """The tenth of [0, 1] `score` falls in (1.0 in the last)."""
    return min(SCORE_BINS - 1, max(0, int(score * SCORE_BINS)))


class ShadowEvaluator:
    """One worker's part of the open shadow run: sampling, scoring, writing."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        engine: Engine,
        predictions: PredictionService,
        settings: Settings,
        metrics: Metrics,
        *,
        sample: Callable[[], float] = random.random,
    ) -> None:
        self._sessions = sessions
        self._metrics = metrics
        self._engine = engine
        self._predictions = predictions
        self._settings = settings
        self._sample = sample
        self._watch: _Watch | None = None
        # deque's append and popleft are atomic: request threads add while the thread takes.
        self._queue: deque[_Item] = deque()
        self._tallies: dict[int, Tally] = {}
        self._tally_lock = threading.Lock()
        self._follow_lock = threading.Lock()
        self._wake = threading.Event()
        self._flush_requested = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy = False
        self._skipped = 0
        self._failed_load: tuple[int, float] | None = None
        self._next_promotion_check = 0.0
        self._wrote_since_check = False

    @property
    def run_id(self) -> int | None:
        """The run this worker is sampling for, if any."""
        watch = self._watch
        return None if watch is None else watch.run_id

    def offer(
        self,
        result: Predictions,
        names: Sequence[str],
        needs_review: Sequence[bool],
        min_score: float | None,
    ) -> None:
        """Sample served answers for the candidate; returns at once, never raises."""
        watch = self._watch
        if watch is None or result.model_version != watch.active_version:
            return
        rate, queue = watch.sample_rate, self._queue
        for name, ranked, review in zip(names, result.ranked, needs_review, strict=True):
            if rate < 1.0 and self._sample() >= rate:
                continue
            if len(queue) >= QUEUE_ITEMS:
                self._skipped += 1
                continue
            queue.append(
                (watch, name, ranked.category, ranked.score, review, ranked.in_scope, min_score)
            )
        if len(queue) >= CHUNK_ITEMS:
            self._wake.set()

    def follow(self) -> None:
        """Pick up a run that started, drop one that ended (the registry check calls it)."""
        # The registry check and a caller outside it (a test, a route) never interleave.
        with self._follow_lock:
            self._follow()

    def _follow(self) -> None:
        with self._sessions() as session:
            run = crud.open_run(session)
            if run is not None and self._settings.auto_promote:
                self._maybe_promote(session, run)
                run = crud.open_run(session)
        current = self._watch
        if run is None:
            self._set_watch(None)
            return
        if current is not None and current.run_id == run.id:
            return
        if self._failed_load is not None:
            failed_run, failed_at = self._failed_load
            if failed_run == run.id and time.monotonic() - failed_at < _RETRY_LOAD_SECONDS:
                return
        try:
            candidate = self._predictions.load(run.candidate_version)
        except (ArtifactError, OSError) as exc:
            self._failed_load = (run.id, time.monotonic())
            logger.warning(
                "shadow candidate could not be loaded",
                extra={"version": run.candidate_version, "reason": str(exc)},
            )
            return
        self._set_watch(_Watch(run.id, run.active_version, run.sample_rate, candidate))
        logger.info(
            "shadow run followed",
            extra={"run": run.id, "version": run.candidate_version, "rate": run.sample_rate},
        )
        self._start_thread()

    def _set_watch(self, watch: _Watch | None) -> None:
        before, self._watch = self._watch, watch
        if before is not None:
            self._metrics.shadow_following.labels(before.candidate.version).set(0)
        if watch is not None:
            self._metrics.shadow_following.labels(watch.candidate.version).set(1)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every item sampled so far is scored and written; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue or self._busy or self._pending():
            if self._thread is None or time.monotonic() >= deadline:
                return False
            # Written at once rather than at the next second.
            self._flush_requested.set()
            self._wake.set()
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Score and write what is queued, then stop the thread."""
        self._set_watch(None)
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        self._wake.set()
        thread.join(timeout)
        self._thread = None

    def _pending(self) -> bool:
        with self._tally_lock:
            return any(self._tallies.values())

    def _start_thread(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="shadow-evaluator", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last_write = time.monotonic()
        while True:
            self._wake.wait(WRITE_SECONDS)
            self._wake.clear()
            # Read after the wait: close() sets it before waking the thread.
            stopping = self._stopping.is_set()
            self._busy = True
            try:
                while self._queue:
                    self._score_chunk()
                due = time.monotonic() - last_write >= WRITE_SECONDS
                if stopping or due or self._flush_requested.is_set():
                    self._flush_requested.clear()
                    self._write()
                    last_write = time.monotonic()
            except Exception:
                # A bug must not end the thread (the routes would queue into nothing).
                logger.exception("shadow evaluation failed")
            finally:
                self._busy = False
            if stopping:
                return

    def _score_chunk(self) -> None:
        chunk: list[_Item] = []
        while self._queue and len(chunk) < CHUNK_ITEMS:
            chunk.append(self._queue.popleft())
        by_watch: dict[int, list[_Item]] = {}
        for item in chunk:
            by_watch.setdefault(id(item[0]), []).append(item)
        for items in by_watch.values():
            self._compare(items[0][0], items)
        if self._skipped:
            skipped, self._skipped = self._skipped, 0
            self._metrics.shadow_skipped.inc(skipped)
            logger.warning("shadow queue full; items skipped", extra={"items": skipped})

    def _compare(self, watch: _Watch, items: list[_Item]) -> None:
        candidate = watch.candidate
        started = time.perf_counter()
        ranked = candidate.rank([item[1] for item in items], 1)
        seconds = time.perf_counter() - started
        own = Predictions(candidate.version, [], candidate.review_threshold)
        thresholds: dict[float | None, float] = {}
        tally = Tally.empty()
        for item, theirs in zip(items, ranked, strict=True):
            _, name, category, score, review, scoped, min_score = item
            threshold = thresholds.get(min_score)
            if threshold is None:
                threshold = thresholds[min_score] = review_threshold(min_score, self._settings, own)
            flip = (category, theirs.category)
            tally.flips[flip] = tally.flips.get(flip, 0) + 1
            if category != theirs.category:
                names = tally.examples.setdefault(flip, [])
                if len(names) < EXAMPLES_PER_FLIP:
                    names.append(name)
            _add_side(tally, ACTIVE, score, review, scoped)
            _add_side(
                tally,
                CANDIDATE,
                theirs.score,
                own.needs_review(theirs, threshold),
                theirs.in_scope,
            )
        self._metrics.shadow_compared.labels(candidate.version).inc(len(items))
        per_item_us = seconds * 1e6 / len(items)
        sums = tally.latency.setdefault(bisect_left(LATENCY_BOUNDS_US, per_item_us), [0.0, 0.0])
        sums[0] += len(items)
        sums[1] += seconds
        with self._tally_lock:
            self._tallies.setdefault(watch.run_id, Tally.empty()).merge(tally, EXAMPLES_PER_FLIP)

    def _write(self) -> None:
        with self._tally_lock:
            tallies, self._tallies = self._tallies, {}
        for run_id, tally in tallies.items():
            if not tally:
                continue
            try:
                with self._engine.begin() as connection:
                    crud.add_tally(connection, run_id, tally, EXAMPLES_PER_FLIP)
                self._wrote_since_check = True
            except SQLAlchemyError as exc:
                # Kept and added to the next write: counts are sums, nothing is lost.
                logger.warning(
                    "shadow tally not written; retrying", extra={"error": type(exc).__name__}
                )
                with self._tally_lock:
                    self._tallies.setdefault(run_id, Tally.empty()).merge(tally, EXAMPLES_PER_FLIP)

    def _maybe_promote(self, session: Session, run: ShadowRun) -> None:
        # Checked after this worker has added to the totals, and now and then anyway
        # (the other workers' writes count too): a few small reads each time.
        now = time.monotonic()
        if not self._wrote_since_check and now < self._next_promotion_check:
            return
        self._wrote_since_check = False
        self._next_promotion_check = now + _PROMOTION_CHECK_SECONDS
        report = build_report(session, run, max_flips=0)
        if promotion_blockers(self._settings, report):
            return
        summary = (
            f"promoted automatically: agreement {report['agreement_rate']:.4f} on "
            f"{report['items_compared']} items"
        )
        # The conditional end makes exactly one worker of every replica the promoter.
        if not crud.end_run(session, run.id, summary, datetime.now(UTC)):
            session.rollback()
            return
        session.commit()
        registry = ModelRegistry(session, self._settings.model_dir, self._predictions)
        try:
            activate_audited(
                registry, AuditTrail(session), run.candidate_version, actor=AUTO_PROMOTE_ACTOR
            )
        except GaroupaError as exc:
            logger.warning(
                "automatic promotion refused",
                extra={"version": run.candidate_version, "reason": exc.message},
            )
            return
        logger.info(
            "shadowed version promoted",
            extra={"version": run.candidate_version, "run": run.id, "summary": summary},
        )


def _add_side(tally: Tally, side: str, score: float, review: bool, scoped: bool) -> None:
    sums = tally.scores.setdefault((side, score_bin(score)), [0.0, 0.0, 0.0, 0.0])
    sums[0] += 1
    sums[1] += score
    sums[2] += review
    sums[3] += not scoped


def promotion_blockers(settings: Settings, report: dict[str, Any]) -> list[str]:
    """Why the run's candidate may not be promoted automatically yet (empty: it may)."""
    reasons = []
    items = report["items_compared"]
    if items < settings.auto_promote_min_items:
        reasons.append(f"{items} items compared, fewer than {settings.auto_promote_min_items}")
    agreement = report["agreement_rate"]
    if agreement is None or agreement < settings.auto_promote_min_agreement:
        reasons.append(f"agreement {agreement} below {settings.auto_promote_min_agreement}")
    active = report[ACTIVE]["needs_review_rate"]
    candidate = report[CANDIDATE]["needs_review_rate"]
    allowed = settings.auto_promote_max_review_rate_increase
    if active is None or candidate is None or candidate > active + allowed:
        reasons.append(f"review rate {candidate} against {active} (+{allowed} allowed)")
    return reasons


def build_report(session: Session, run: ShadowRun, max_flips: int = 50) -> dict[str, Any]:
    """The run's report (the shape of `ShadowReport` in app/schemas/shadow.py)."""
    totals = crud.totals(session, run.id)
    compared = sum(items for _, _, items in totals.flips)
    agreed = sum(items for active, candidate, items in totals.flips if active == candidate)
    flips = sorted(
        ((a, c, n) for a, c, n in totals.flips if a != c), key=lambda f: (-f[2], f[0], f[1])
    )
    shown = flips[:max_flips]
    names = crud.examples(session, run.id, [(a, c) for a, c, _ in shown], EXAMPLES_PER_FLIP)
    latency_items = sum(items for _, items, _ in totals.latency)
    latency_seconds = sum(seconds for _, _, seconds in totals.latency)
    return {
        "model_version": run.candidate_version,
        "active_version": run.active_version,
        "sample_rate": run.sample_rate,
        "status": "running" if run.open_slot else "ended",
        "started_at": run.started_at,
        "started_by": run.started_by,
        "ended_at": run.ended_at,
        "end_reason": run.end_reason,
        "items_compared": compared,
        "agreement_rate": agreed / compared if compared else None,
        "flips_total": len(flips),
        "flips": [
            {"active_category": a, "candidate_category": c, "count": n, "examples": names[(a, c)]}
            for a, c, n in shown
        ],
        ACTIVE: _side(totals, ACTIVE),
        CANDIDATE: {
            **_side(totals, CANDIDATE),
            "latency": {
                "items": latency_items,
                "mean_us": latency_seconds * 1e6 / latency_items if latency_items else None,
                "histogram": [
                    {
                        "le_us": LATENCY_BOUNDS_US[b] if b < len(LATENCY_BOUNDS_US) else None,
                        "items": items,
                    }
                    for b, items, _ in sorted(totals.latency)
                ],
            },
        },
    }


def _side(totals: crud.Totals, side: str) -> dict[str, Any]:
    histogram = [0] * SCORE_BINS
    items = review = out_of_scope = 0
    score_sum = 0.0
    for name, score_bin_, n, total, flagged, outside in totals.scores:
        if name != side:
            continue
        histogram[score_bin_] += n
        items += n
        score_sum += total
        review += flagged
        out_of_scope += outside
    return {
        "items": items,
        "mean_score": score_sum / items if items else None,
        "needs_review_rate": review / items if items else None,
        "out_of_scope_rate": out_of_scope / items if items else None,
        "score_histogram": histogram,
    }


class ShadowService:
    """Start, stop and report shadow runs (the `/models/{version}/shadow` routes)."""

    def __init__(self, session: Session, registry: ModelRegistry) -> None:
        self._session = session
        self._registry = registry

    def start(self, version: str, sample_rate: float, *, actor: str) -> ShadowRun:
        """Open a run of `version` against the active version.

        ModelVersionNotFound for an unknown version; Conflict when no version is
        active, `version` is the active one, its files fail their checks, or a run
        is already open (at most one at a time).
        """
        self._registry.get(version)
        active = self._registry.active()
        if active is None:
            raise Conflict("No version is active: there is nothing to compare with.")
        if active.version == version:
            raise Conflict(f"{version} is the active version; shadow another one.")
        running = crud.open_run(self._session)
        if running is not None:
            raise Conflict(
                f"{running.candidate_version} is being shadowed; stop it first "
                f"(DELETE /models/{running.candidate_version}/shadow)."
            )
        self._registry.check_intact(version)
        run = ShadowRun(
            candidate_version=version,
            active_version=active.version,
            sample_rate=sample_rate,
            started_at=datetime.now(UTC),
            started_by=actor,
            open_slot=True,
        )
        self._session.add(run)
        try:
            self._session.commit()
        except IntegrityError:
            self._session.rollback()
            raise Conflict("Another shadow run started at the same time; stop it first.") from None
        logger.info(
            "shadow run started",
            extra={"version": version, "active": active.version, "rate": sample_rate},
        )
        return run

    def stop(self, version: str, *, actor: str) -> ShadowRun:
        """End the open run of `version`; ShadowNotFound when none is open."""
        run = crud.open_run(self._session)
        if run is None or run.candidate_version != version:
            raise ShadowNotFound(f"No shadow run of {version} is running.")
        crud.end_run(self._session, run.id, f"stopped by {actor}", datetime.now(UTC))
        self._session.commit()
        self._session.refresh(run)
        return run

    def latest(self, version: str) -> ShadowRun:
        """The latest run of `version`, open or ended; ShadowNotFound when there is none."""
        run = crud.latest_run(self._session, version)
        if run is None:
            raise ShadowNotFound(f"{version} has never been shadowed.")
        return run

    def report(self, run: ShadowRun, max_flips: int = 50) -> dict[str, Any]:
        """`build_report` of `run`."""
        return build_report(self._session, run, max_flips)
