"""Prometheus metrics that stay correct across several worker processes.

prometheus-client's multiprocess mode keeps each process's values in files under
PROMETHEUS_MULTIPROC_DIR and sums them at scrape time. The library reads that
variable when it is first imported, so nothing here imports it at module level:
`setup_metrics()`, called by an entry point (the app factory), sets the variable
and only then imports the library and creates the metrics, once per process.
Operators should set the variable themselves (an empty directory per
deployment); the default is a directory shared by every worker of one server:
they all have the same parent process.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import Counter, Gauge, Histogram
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector

# Categories come from uploaded data and feedback, i.e. from clients: a label value
# is cut to this many characters, control and format characters removed, so a
# category cannot bloat every scrape or forge lines in tools that read it.
MAX_LABEL_CHARS = 64
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")
# prometheus_client.CONTENT_TYPE_LATEST, spelled out so that documenting the route
# does not import the library (tests/test_operations.py checks they agree).
CONTENT_TYPE_LATEST = "text/plain; version=1.0.0; charset=utf-8"


def label_value(text: str) -> str:
    """A user-derived string made safe as a Prometheus label value."""
    return _UNPRINTABLE.sub("", text)[:MAX_LABEL_CHARS]


@dataclass(frozen=True)
class Metrics:
    """This process's metrics; `setup_metrics()` builds the one instance."""

    http_requests: Counter
    http_latency: Histogram
    predictions: Counter
    token_requests: Counter
    model_serving: Gauge
    prediction_scope: Counter
    prediction_score: Histogram
    out_of_scope_share: Gauge
    log_written: Counter
    log_dropped: Counter
    log_queued: Gauge
    shadow_following: Gauge
    shadow_compared: Counter
    shadow_skipped: Counter
    # Labelled children looked up once per category: the hot path skips the label check.
    _prediction_children: dict[str, Counter] = field(default_factory=dict)
    _drift: dict[str, _ScopeWindow] = field(default_factory=dict)
    _drift_lock: threading.Lock = field(default_factory=threading.Lock)

    def observe_scores(
        self, version: str, scores: Sequence[float], in_scope: Sequence[bool]
    ) -> None:
        """Record served scores and scope outcomes of `version` (the drift signal)."""
        with self._drift_lock:
            window = self._drift.get(version)
            if window is None:
                window = self._drift[version] = _ScopeWindow(
                    histogram=self.prediction_score.labels(label_value(version)),
                    inside=self.prediction_scope.labels(label_value(version), "true"),
                    outside=self.prediction_scope.labels(label_value(version), "false"),
                    share=self.out_of_scope_share.labels(label_value(version)),
                )
            window.add(scores, in_scope)

    def count_prediction(self, category: str, n: int = 1) -> None:
        """Count a predicted category (`n` times, for a batch)."""
        child = self._prediction_children.get(category)
        if child is None:
            child = self._prediction_children[category] = self.predictions.labels(
                label_value(category)
            )
        child.inc(n)

    def count_token_outcome(self, outcome: str) -> None:
        """Count a token endpoint answer: `issued` or an RFC 6749 error code."""
        self.token_requests.labels(outcome).inc()

    def set_serving(self, version: str, serving: bool) -> None:
        """Report whether this worker serves `version`."""
        self.model_serving.labels(version).set(1 if serving else 0)

    @staticmethod
    def render(collectors: Iterable[Collector] = ()) -> bytes:
        """The metrics of every process, plus `collectors` read at scrape time."""
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry()
        registry.register(_ProcessFilesCollector(Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])))
        for collector in collectors:
            registry.register(collector)
        return generate_latest(registry)


# A process's value file starts with the 4-byte length of its used part (padded to 8).
_VALUE_FILE_HEADER_BYTES = 8


class _ProcessFilesCollector:
    """prometheus-client's MultiProcessCollector, minus files no process finished creating.

    The library creates a value file empty and sizes it a moment later; a process
    killed in between (a cancelled job, a worker ended with its job) leaves an
    empty file behind, on which the library's own collector fails every scrape
    from then on. Such a file holds no value, so leaving it out loses nothing.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def collect(self) -> Iterable[Metric]:
        from prometheus_client import multiprocess

        files = []
        for path in self._directory.glob("*.db"):
            try:
                if path.stat().st_size >= _VALUE_FILE_HEADER_BYTES:
                    files.append(str(path))
            except FileNotFoundError:
                # A live gauge's file, removed for its dead process since the listing.
                continue
        return multiprocess.MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-any-return,no-untyped-call]


# Predictions the rolling out-of-scope share of one worker is taken over.
DRIFT_WINDOW = 1000


@dataclass
class _ScopeWindow:
    """One version's score histogram, scope counters and rolling out-of-scope share."""

    histogram: Histogram
    inside: Counter
    outside: Counter
    share: Gauge
    recent: deque[bool] = field(default_factory=lambda: deque(maxlen=DRIFT_WINDOW))
    out_of_scope: int = 0

    def add(self, scores: Sequence[float], in_scope: Sequence[bool]) -> None:
        recent = self.recent
        outside = 0
        for score, scoped in zip(scores, in_scope, strict=True):
            self.histogram.observe(score)
            if len(recent) == recent.maxlen and not recent[0]:
                self.out_of_scope -= 1
            recent.append(scoped)
            if not scoped:
                outside += 1
        self.out_of_scope += outside
        if outside:
            self.outside.inc(outside)
        if len(scores) > outside:
            self.inside.inc(len(scores) - outside)
        self.share.set(self.out_of_scope / len(recent))


_lock = threading.Lock()
_metrics: Metrics | None = None


def setup_metrics() -> Metrics:
    """Point prometheus-client at the multiprocess directory and create the metrics.

    Idempotent: every app built in one process (tests build many) shares the one
    set, since two metric objects with one name would overwrite each other's
    values in the shared files.
    """
    global _metrics
    with _lock:
        if _metrics is None:
            _metrics = _create_metrics()
        return _metrics


def _create_metrics() -> Metrics:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        default = Path(tempfile.gettempdir()) / f"garoupa-metrics-{os.getppid()}"
        default.mkdir(mode=0o700, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(default)
    from prometheus_client import Counter, Gauge, Histogram, values

    if not getattr(values.ValueClass, "_multiprocess", False):
        # Something imported the library before the directory was set (a test's
        # parser import, another library); it then chose in-process values, which
        # every scrape would miss. Metrics look the class up at creation, so
        # choosing again now is enough.
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    # registry=None: in multiprocess mode the values live in files, which
    # MultiProcessCollector reads at scrape time; no in-process registry is needed.
    return Metrics(
        http_requests=Counter(
            "garoupa_http_requests_total",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=None,
        ),
        http_latency=Histogram(
            "garoupa_http_request_duration_seconds",
            "Time from request start to response end, by method and route template.",
            ["method", "route"],
            # Predictions take well under a millisecond; training requests tens of ms.
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=None,
        ),
        predictions=Counter(
            "garoupa_predictions_total",
            "Predicted categories (batch items count one each).",
            ["category"],
            registry=None,
        ),
        token_requests=Counter(
            "garoupa_token_requests_total",
            "Token endpoint outcomes: issued or the OAuth2 error code.",
            ["outcome"],
            registry=None,
        ),
        model_serving=Gauge(
            "garoupa_model_serving",
            "1 for the model version a live worker serves (max over workers).",
            ["version"],
            multiprocess_mode="livemax",
            registry=None,
        ),
        prediction_scope=Counter(
            "garoupa_prediction_scope_total",
            "Predictions by model version and whether the name was in scope.",
            ["model_version", "in_scope"],
            registry=None,
        ),
        prediction_score=Histogram(
            "garoupa_prediction_score",
            "Served prediction scores (the top category's probability) by model version.",
            ["model_version"],
            buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0),
            registry=None,
        ),
        out_of_scope_share=Gauge(
            "garoupa_out_of_scope_share",
            f"Share of the last {DRIFT_WINDOW} predictions of a worker that were out of "
            "scope, by model version (the most recently updated live worker's).",
            ["model_version"],
            multiprocess_mode="livemostrecent",
            registry=None,
        ),
        log_written=Counter(
            "garoupa_prediction_log_written_total",
            "Predictions written to the prediction log.",
            registry=None,
        ),
        log_dropped=Counter(
            "garoupa_prediction_log_dropped_total",
            "Predictions the prediction log could not keep: `queue_full` while the "
            "database was slow or down, `shutdown` when it was still down at exit.",
            ["reason"],
            registry=None,
        ),
        log_queued=Gauge(
            "garoupa_prediction_log_queued",
            "Predictions waiting in the live workers' queues to be written to the log.",
            multiprocess_mode="livesum",
            registry=None,
        ),
        shadow_following=Gauge(
            "garoupa_shadow_following",
            "Live workers sampling traffic for the open shadow run, by candidate version.",
            ["version"],
            multiprocess_mode="livesum",
            registry=None,
        ),
        shadow_compared=Counter(
            "garoupa_shadow_compared_total",
            "Items a shadow candidate scored beside the active version, by candidate.",
            ["version"],
            registry=None,
        ),
        shadow_skipped=Counter(
            "garoupa_shadow_skipped_total",
            "Sampled items skipped because a worker's shadow queue was full.",
            registry=None,
        ),
    )
