"""Swagger UI and ReDoc served from the app's own files.

FastAPI's built-in /docs and /redoc load their JavaScript, CSS, favicon and (for
ReDoc) Google Fonts from public CDNs, so they show a blank page on a network
without internet access and leak every docs visit to third parties. The pinned
copies under app/static/ (see app/static/README.md) replace all of that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
STATIC_URL = "/static"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"
DEFAULT_OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"

# Swagger UI otherwise sends the schema to validator.swagger.io for a badge.
OFFLINE_SWAGGER_PARAMETERS: dict[str, Any] = {"validatorUrl": None}

# The browser refuses anything from another origin: ReDoc's sidebar still loads the
# Redocly logo from its CDN (no option turns it off; it hides itself when refused).
# Inline code and eval stay allowed because both UIs need them (the inline Swagger UI
# set-up, styled-components, ajv); this policy keeps the docs offline, it is not an
# XSS defence.
SAME_ORIGIN_ONLY = "default-src 'self' 'unsafe-inline' 'unsafe-eval' data: blob:"


def install_docs(app: FastAPI) -> None:
    """Mount the static assets and add /docs, its OAuth2 redirect and /redoc.

    Create the app with `docs_url=None, redoc_url=None` so that FastAPI's CDN-backed
    pages are not registered first.
    """
    openapi_url = app.openapi_url
    if not openapi_url:
        # Without a schema there is nothing for either UI to show.
        return
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url or DEFAULT_OAUTH2_REDIRECT_URL
    swagger_parameters = {**OFFLINE_SWAGGER_PARAMETERS, **(app.swagger_ui_parameters or {})}

    async def swagger_ui_html(request: Request) -> HTMLResponse:
        # Behind a proxy that strips a prefix, every URL the browser follows needs it back.
        root = _root_path(request)
        html = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/swagger-ui/favicon-32x32.png",
            # The HTML prefixes window.location.origin itself.
            oauth2_redirect_url=root + oauth2_redirect_url,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=swagger_parameters,
        )
        return _same_origin_only(html)

    async def swagger_ui_redirect() -> HTMLResponse:
        return _same_origin_only(get_swagger_ui_oauth2_redirect_html())

    async def redoc_html(request: Request) -> HTMLResponse:
        root = _root_path(request)
        html = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,
        )
        return _same_origin_only(html)

    app.add_api_route(DOCS_URL, swagger_ui_html, methods=["GET"], include_in_schema=False)
    app.add_api_route(
        oauth2_redirect_url, swagger_ui_redirect, methods=["GET"], include_in_schema=False
    )
    app.add_api_route(REDOC_URL, redoc_html, methods=["GET"], include_in_schema=False)


def _root_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _same_origin_only(response: HTMLResponse) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = SAME_ORIGIN_ONLY
    return response
