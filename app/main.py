"""The FastAPI application factory; `app` is what uvicorn serves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from app.api.errors import add_exception_handlers
from app.api.main import api_router
from app.core.config import Settings, load_settings
from app.core.logging import configure_logging
from app.services.container import ServiceContainer

logger = logging.getLogger(__name__)

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
        services.predictions.sync()
        app.state.services = services
        follower = asyncio.create_task(_follow_active_model(services, settings))
        logger.info("garoupa started", extra={"environment": settings.environment.value})
        try:
            yield
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
            services.close()

    app = FastAPI(
        title="Garoupa",
        summary="Product categorization API",
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
        swagger_ui_init_oauth={"usePkceWithAuthorizationCodeGrant": False},
    )
    app.state.settings = settings
    add_exception_handlers(app)
    app.include_router(api_router)
    return app


async def _follow_active_model(services: ServiceContainer, settings: Settings) -> None:
    """Poll the registry's active pointer and swap models off the event loop."""
    while True:
        await asyncio.sleep(settings.model_refresh_seconds)
        try:
            await run_in_threadpool(services.predictions.sync)
        except Exception:
            # A database hiccup must not end the follower; the next tick retries.
            logger.exception("active model check failed")


app = create_app()
