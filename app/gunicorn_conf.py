"""Gunicorn settings for serving with several workers that share one interpreter image.

    gunicorn -c python:app.gunicorn_conf -w 4 -b 0.0.0.0:8000 app.main:app

`uvicorn --workers N` spawns N fresh interpreters, and each imports FastAPI,
pydantic, SQLAlchemy and NumPy again: about 90 MiB of private heap per worker
before it serves a request (docs/performance.md). Here the app is imported and
built once in gunicorn's master (`preload_app`); the workers are forked from it
and share those pages copy-on-write. Each worker still runs the app's lifespan
itself: its own database pool, model, background tasks and metrics file, exactly
as under uvicorn.

A worker follows the registry on its own: after an activation it loads the new
version into its own memory. `kill -HUP` on the master then replaces the workers
with ones forked after the master preloaded that version, which share it again.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from app.core.memory import release_free_memory

logger = logging.getLogger("app.gunicorn_conf")

worker_class = "uvicorn_worker.UvicornWorker"
preload_app = True
# A worker that has not reported for this long is replaced. Loading a large
# model happens before a worker's first report, so this is well above the
# longest load measured (8.5 s at 1,000 categories × 300,000 features).
timeout = 120
# The app logs every request itself, with more than an access line has.
accesslog = None
# Gunicorn's control socket can change the worker count and reload the app, and
# its default path is one per user, shared by every master that user runs.
control_socket_disable = True

# One metrics directory per master, set before the app is imported (prometheus-
# client reads it then). An operator's own PROMETHEUS_MULTIPROC_DIR wins.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _metrics = Path(tempfile.gettempdir()) / f"garoupa-metrics-{os.getpid()}"
    _metrics.mkdir(mode=0o700, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics)


def when_ready(server: Any) -> None:
    """Once, in the master, after the app is built and before the first fork."""
    _import_server_parts()
    _preload_model()
    _freeze()


def pre_fork(server: Any, worker: Any) -> None:
    """In the master before each fork, the first ones and every replacement after them.

    A version activated since the last fork is preloaded here, so the workers a
    `kill -HUP` starts (or any replacement) share it again; until then each
    worker holds its own copy of a version it switched to by itself.
    """
    if _preload_model():
        _freeze()


def _freeze() -> None:
    # Objects the collector tracks carry a header it writes to on every full
    # collection; in the permanent generation they are never visited, so a
    # worker's collections leave the pages it shares with the master unwritten.
    gc.collect()
    gc.freeze()
    release_free_memory()


def _preload_model() -> bool:
    """True when a version was loaded now (not when the preloaded one is still active)."""
    # Imported here: the metrics directory above must be set before the app is.
    from sqlalchemy.exc import SQLAlchemyError

    from app.db.database import open_database
    from app.db.schema import SchemaNotCurrent
    from app.main import app
    from app.services.prediction import preload_for_workers

    settings = app.state.settings
    try:
        # Closed again before the fork: no worker may inherit a pooled connection.
        with open_database(settings.database_url, migrate=False) as database:
            version = preload_for_workers(database.sessions, settings.model_dir, app.state.metrics)
    except (SQLAlchemyError, SchemaNotCurrent, OSError) as exc:
        # Each worker connects on its own and reports the same problem in its log.
        logger.warning("no model preloaded", extra={"error": type(exc).__name__})
        return False
    if version is None:
        return False
    logger.info("model preloaded for the workers", extra={"version": version})
    return True


def _import_server_parts() -> None:
    # uvicorn imports its event loop and protocol implementations when a worker
    # starts serving: imported here, they are shared instead of once per worker.
    import uvicorn.lifespan.on
    import uvicorn.protocols.http.auto
    import uvicorn.protocols.websockets.auto  # noqa: F401

    with contextlib.suppress(ImportError):
        import uvloop  # noqa: F401


def post_worker_init(worker: Any) -> None:
    """In each worker, after the worker class pointed uvicorn's loggers at gunicorn's."""
    from app.core.logging import route_server_loggers

    route_server_loggers()


def child_exit(server: Any, worker: Any) -> None:
    """In the master: a worker's live gauges (the model it served, its queue) end with it."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
