"""The FastAPI application factory; `app` is what uvicorn serves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
from app.core.config import Settings, load_settings
from app.core.logging import configure_logging
from app.services.container import ServiceContainer
from app.services.datasets import UploadStore

logger = logging.getLogger(__name__)

# Expired uploads are deleted this often (and, per client, on each upload).
UPLOAD_PURGE_SECONDS = 3600.0

DESCRIPTION = """
Predicts a retail product's category from its name (`susu ultra coklat 250ml` → `Susu`).

Every route needs a bearer token from `POST /auth/token` (OAuth2 client credentials).
In Swagger UI, press **Authorize**, enter a client id and secret, and pick scopes.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; nothing touches the database or disk until the lifespan starts."""
    settings = settings or load_settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = ServiceContainer.build(settings)
        services.revocation.refresh()
        # Also fails jobs whose process died while no server was running.
        services.housekeeping()
        app.state.services = services
        follower = asyncio.create_task(_follow_active_model(services, settings))
        purger = asyncio.create_task(
            _purge_expired_uploads(UploadStore(settings, services.sessions))
        )
        logger.info("garoupa started", extra={"environment": settings.environment.value})
        try:
            yield
        finally:
            for task in (follower, purger):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            services.close()

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
    add_exception_handlers(app)
    # Innermost: runs after the size limits, before anything reads a body. The token
    # endpoint is exempt: it authenticates clients, not bearer tokens.
    app.add_middleware(BearerGate, verify=verify_bearer, exempt=OAUTH_PATHS)
    app.add_middleware(
        RequestLimits,
        limit_for=_body_limits(settings),
        max_header_bytes=settings.max_header_bytes,
    )
    # Outermost, so that 413s and errors are logged and counted too.
    app.add_middleware(RequestContext)
    app.include_router(api_router)
    install_docs(app)
    return app


def _body_limits(settings: Settings) -> Callable[[str], int]:
    # Multipart framing adds a few hundred bytes around the CSV itself.
    upload_limit = settings.max_upload_bytes + 64 * 1024

    def limit_for(path: str) -> int:
        return upload_limit if path.startswith("/datasets") else settings.max_request_bytes

    return limit_for


async def _follow_active_model(services: ServiceContainer, settings: Settings) -> None:
    """Poll the registry (active model, dead jobs) off the event loop."""
    while True:
        await asyncio.sleep(settings.model_refresh_seconds)
        try:
            await run_in_threadpool(services.housekeeping)
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


app = create_app()
