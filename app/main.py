"""The FastAPI application factory; `app` is what uvicorn serves.

Importing this module does nothing: `create_app()` is the entry point that reads
the settings (and `.env`), configures logging and the metrics directory, and
`app` is built on first access (`uvicorn app.main:app`, or
`uvicorn --factory app.main:create_app`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from app.api.deps import verify_bearer
from app.api.docs import install_docs
from app.api.errors import OAUTH_PATHS, add_exception_handlers
from app.api.main import api_router
from app.api.middleware import BearerGate, RequestContext, RequestLimits
from app.api.openapi import document_common_answers
from app.api.routes import (
    console,
    console_clients,
    console_models,
    console_overview,
    console_review,
    console_training,
)
from app.core.config import Settings, load_settings
from app.core.logging import configure_logging
from app.core.metrics import setup_metrics
from app.schemas.bulk import BULK_PATH
from app.services.datasets import UploadStore
from app.services.runtime import Runtime

logger = logging.getLogger(__name__)

# Expired uploads are deleted this often (and, per client, on each upload).
UPLOAD_PURGE_SECONDS = 3600.0
# Expired prediction log rows are deleted this often, by one process at a time.
LOG_PURGE_SECONDS = 3600.0
# How often a worker asks whether a closed day waits to be rolled up (one small read).
ROLLUP_CHECK_SECONDS = 60.0

DESCRIPTION = """
Predicts a retail product's category from its name (`susu ultra coklat 250ml` → `Susu`).

Every route needs a bearer token from `POST /auth/token` (OAuth2 client credentials).
In Swagger UI, press **Authorize**, enter a client id and secret, and pick scopes.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; nothing touches the database until the lifespan starts."""
    settings = settings or load_settings()
    configure_logging(settings)
    metrics = setup_metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings, metrics)
        try:
            runtime.revocation.refresh()
            # Also fails jobs whose process died while no server was running.
            runtime.housekeeping()
        except BaseException:
            runtime.close()
            raise
        app.state.runtime = runtime
        runtime.prediction_log.start()
        background = [
            asyncio.create_task(_follow_active_model(runtime, settings)),
            asyncio.create_task(_purge_expired_uploads(runtime.uploads)),
        ]
        if runtime.prediction_log.enabled:
            background.append(asyncio.create_task(_maintain_prediction_log(runtime)))
        logger.info("garoupa started", extra={"environment": settings.environment.value})
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            runtime.close()

    app = FastAPI(
        title="Garoupa",
        summary="Product categorization API",
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
        swagger_ui_init_oauth={"usePkceWithAuthorizationCodeGrant": False},
        # Served from app/static by install_docs instead of FastAPI's CDN-backed pages.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    add_exception_handlers(app)
    # Innermost: runs after the size limits, before anything reads a body. The token
    # endpoint is exempt (it authenticates clients, not bearer tokens), and so are
    # the console's forms (a session cookie and CSRF token stand for the token).
    app.add_middleware(
        BearerGate,
        verify=verify_bearer,
        exempt=OAUTH_PATHS,
        exempt_prefixes=(console.FORM_PREFIX,),
    )
    app.add_middleware(
        RequestLimits,
        limit_for=_body_limits(settings),
        max_header_bytes=settings.max_header_bytes,
    )
    # Outermost, so that 413s and errors are logged and counted too.
    app.add_middleware(RequestContext, metrics=metrics)
    app.include_router(api_router)
    app.include_router(console.router)
    app.include_router(console_overview.router)
    app.include_router(console_clients.router)
    app.include_router(console_models.router)
    app.include_router(console_review.router)
    app.include_router(console_training.router)
    install_docs(app)
    document_common_answers(app)
    return app


def _body_limits(settings: Settings) -> Callable[[str], int]:
    # Multipart framing adds a few hundred bytes around the CSV itself.
    upload_limit = settings.max_upload_bytes + 64 * 1024
    bulk_limit = settings.max_bulk_upload_bytes + 64 * 1024

    def limit_for(path: str) -> int:
        # The console's upload form takes the same files as POST /datasets/.
        uploads = path.startswith(("/datasets", console_training.UPLOAD_PATH))
        if path == BULK_PATH:
            return bulk_limit
        return upload_limit if uploads else settings.max_request_bytes

    return limit_for


async def _follow_active_model(runtime: Runtime, settings: Settings) -> None:
    """Poll the registry (active model, dead jobs) off the event loop."""
    while True:
        await asyncio.sleep(settings.model_refresh_seconds)
        try:
            await run_in_threadpool(runtime.housekeeping)
        except SQLAlchemyError as exc:
            # The database is down or restarting: one line per tick, not a traceback;
            # /ready reports it, and the next tick retries.
            logger.warning("registry check failed", extra={"error": type(exc).__name__})
        except Exception:
            # Anything else is a bug, but this loop is what swaps models and reaps
            # dead jobs: log it with its traceback and keep the loop alive.
            logger.exception("registry check failed")


async def _purge_expired_uploads(uploads: UploadStore) -> None:
    """Delete expired uploads at start-up and then hourly, off the event loop."""
    while True:
        try:
            await run_in_threadpool(uploads.purge_expired)
        except (OSError, SQLAlchemyError) as exc:
            # Uploads are also purged per client at upload time; the next pass retries.
            logger.warning("upload purge failed", extra={"error": type(exc).__name__})
        await asyncio.sleep(UPLOAD_PURGE_SECONDS)


async def _maintain_prediction_log(runtime: Runtime) -> None:
    """Purge log rows past PREDICTION_LOG_RETENTION_DAYS at start-up and then hourly,
    and roll up a day that has just closed within a minute, all off the event loop."""
    log = runtime.prediction_log
    retention = runtime.settings.prediction_log_retention_days
    next_purge = 0.0
    while True:
        try:
            if time.monotonic() >= next_purge:
                # Set first: a failing purge is retried in an hour, not every minute.
                next_purge = time.monotonic() + LOG_PURGE_SECONDS
                await run_in_threadpool(log.purge_expired, retention)
            else:
                await run_in_threadpool(log.roll_up_pending, retention)
        except (OSError, SQLAlchemyError) as exc:
            logger.warning("prediction log maintenance failed", extra={"error": type(exc).__name__})
        await asyncio.sleep(ROLLUP_CHECK_SECONDS)


@functools.cache
def _default_app() -> FastAPI:
    return create_app()


def __getattr__(name: str) -> FastAPI:
    # PEP 562: `app` is built when uvicorn (or anyone) first asks for it, not at import.
    if name == "app":
        return _default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
