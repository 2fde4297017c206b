"""How a training job spreads its independent fits over cores or a Dask cluster, and counts them.

The expensive part of training is a handful of independent LinearSVC fits: one
per calibration fold plus the final one (`app.ml.calibration`), times the grid
candidates and folds of a parameter search. They run through joblib, so where
they run is chosen once, around the whole job, by `training_parallelism`:

* on this machine, in joblib's worker processes (loky), which inherit the
  job's lower priority; the matrices reach them memory-mapped, not copied;
* on a Dask cluster (`TRAINING_CLUSTER`), through joblib's Dask backend, which
  ships each fit's inputs to a worker and its result back.

Not threads, although liblinear releases the GIL: it draws the coordinate order
of its dual solver from one random generator global to the process, so two fits
at once in one process interleave their draws and each gets another model. For
the same reason a process runs one fit at a time (`_FIT_LOCK`; a Dask worker
with several threads is then safe, just no faster). With that, every fit is
deterministic (fixed seeds, one BLAS thread), and where or in which order the
fits run cannot change the model: the artifact is the same byte for byte with
any number of cores or workers (tests/test_training_parallel.py).

`counting_fits` lets a job's progress display follow the fits as they finish.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from joblib import Parallel, delayed, parallel_config
from threadpoolctl import threadpool_limits

__all__ = [
    "FitProgress",
    "counting_fits",
    "run_fits",
    "training_parallelism",
]

logger = logging.getLogger(__name__)

# How long a job waits for a Dask scheduler to answer before it fails.
CLUSTER_CONNECT_TIMEOUT_SECONDS = 30


@contextmanager
def training_parallelism(cores: int = 1, cluster: str | None = None) -> Iterator[str]:
    """Run the fits inside on `cores` threads here, or on the Dask scheduler at `cluster`.

    Yields a one-line description for logs and displays.
    """
    if cluster:
        # Imported here: only a job configured for a cluster pays for distributed.
        from distributed import Client

        with Client(cluster, timeout=CLUSTER_CONNECT_TIMEOUT_SECONDS) as client:
            workers = len(client.scheduler_info().get("workers", {}))
            with parallel_config(backend="dask"):
                yield f"Dask cluster at {cluster} ({workers} workers)"
        return
    with parallel_config(backend="loky", n_jobs=cores):
        yield f"{cores} core{'s' if cores != 1 else ''}"


@dataclass(frozen=True)
class FitProgress:
    """Fits done of those planned, and the seconds the rest should take at the rate so far."""

    done: int
    total: int
    eta_seconds: float | None


FitListener = Callable[[FitProgress], None]

_lock = threading.Lock()
_listener: FitListener | None = None
_planned = 0
_done = 0
_started = 0.0


@contextmanager
def counting_fits(total: int, listener: FitListener) -> Iterator[None]:
    """Call `listener` after each fit `run_fits` finishes inside, with progress against `total`.

    A process-wide counter rather than a context variable, because the fits of a
    grid search are started from joblib's worker threads, which do not inherit
    context. One job runs per process, so one counter is enough.
    """
    global _listener, _planned, _done, _started
    with _lock:
        _listener, _planned, _done, _started = listener, max(total, 0), 0, time.monotonic()
    try:
        listener(FitProgress(0, _planned, None))
        yield
    finally:
        with _lock:
            _listener = None


def _fit_finished() -> None:
    global _done
    with _lock:
        listener = _listener
        if listener is None:
            return
        # A grid search can fit a class-poor fold with fewer folds than planned
        # for; the count never runs past the plan.
        _done = min(_done + 1, _planned)
        done, total = _done, _planned
        elapsed = time.monotonic() - _started
    eta = elapsed / done * (total - done) if done else None
    try:
        listener(FitProgress(done, total, eta))
    except Exception:
        # Progress is a display: a failing listener must not fail the fit it reports.
        logger.exception("fit progress listener failed")


_FIT_LOCK = threading.Lock()


def _one_fit(function: Callable[..., Any], *args: Any) -> Any:
    # One BLAS thread: several fits share the machine, and a threaded BLAS could sum
    # in another order on another machine. The lock: see the module's docstring.
    with _FIT_LOCK, threadpool_limits(limits=1, user_api="blas"):
        return function(*args)


def run_fits(tasks: Iterable[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Any]:
    """`function(*args)` for each task, in parallel as `training_parallelism` set; results in order.

    `tasks` may be a generator: only as many are built as can run at once, so a
    fold's data matrices exist only while it is fitted.
    """
    calls = (delayed(_one_fit)(function, *args) for function, args in tasks)
    results: list[Any] = []
    parallel = Parallel(pre_dispatch="n_jobs", return_as="generator")
    for result in parallel(calls):
        results.append(result)
        _fit_finished()
    return results
