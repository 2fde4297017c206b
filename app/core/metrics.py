"""Prometheus metrics that stay correct across several worker processes.

prometheus-client's multiprocess mode keeps each process's values in files under
PROMETHEUS_MULTIPROC_DIR and sums them at scrape time. The variable must be set
before prometheus_client is first imported, which is why this module sets it
and why nothing else imports prometheus_client before it. Operators should set
it themselves (an empty directory per deployment); the default is a directory
shared by every worker of one server: they all have the same parent process.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _default = Path(tempfile.gettempdir()) / f"garoupa-metrics-{os.getppid()}"
    _default.mkdir(mode=0o700, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_default)

from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily  # noqa: E402
from prometheus_client.registry import Collector  # noqa: E402

# Other modules import prometheus_client names from here, never directly, so the
# environment variable above is always set first.
__all__ = [
    "CONTENT_TYPE_LATEST",
    "Collector",
    "GaugeMetricFamily",
    "HTTP_LATENCY",
    "HTTP_REQUESTS",
    "MODEL_SERVING",
    "PREDICTIONS",
    "TOKEN_REQUESTS",
    "count_prediction",
    "label_value",
    "render",
]

HTTP_REQUESTS = Counter(
    "garoupa_http_requests_total",
    "HTTP requests by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "garoupa_http_request_duration_seconds",
    "Time from request start to response end, by method and route template.",
    ["method", "route"],
    # Predictions take well under a millisecond; training requests tens of ms.
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
PREDICTIONS = Counter(
    "garoupa_predictions_total", "Predicted categories (batch items count one each).", ["category"]
)
TOKEN_REQUESTS = Counter(
    "garoupa_token_requests_total",
    "Token endpoint outcomes: issued or the OAuth2 error code.",
    ["outcome"],
)
MODEL_SERVING = Gauge(
    "garoupa_model_serving",
    "1 for the model version a live worker serves (max over workers).",
    ["version"],
    multiprocess_mode="livemax",
)


# Categories come from uploaded data and feedback, i.e. from clients: a label value
# is cut to this many characters, control and format characters removed, so a
# category cannot bloat every scrape or forge lines in tools that read it.
MAX_LABEL_CHARS = 64
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")

_prediction_counters: dict[str, Counter] = {}


def label_value(text: str) -> str:
    """A user-derived string made safe as a Prometheus label value."""
    return _UNPRINTABLE.sub("", text)[:MAX_LABEL_CHARS]


def count_prediction(category: str, n: int = 1) -> None:
    """Count predicted categories; the labelled child is looked up once per category."""
    child = _prediction_counters.get(category)
    if child is None:
        child = _prediction_counters[category] = PREDICTIONS.labels(label_value(category))
    child.inc(n)


def render(*collectors: Collector) -> bytes:
    """The metrics of every process, plus `collectors` read at scrape time."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)
