"""The console server: one origin for the browser. It serves the built single-page app, its
configuration (``/console-config.json``), the development sign-in (development only), and
proxies ``/api/v1/...`` to the service that owns the path (see ``routes``)."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.staticfiles import StaticFiles

from console import dev_sign_in
from console.config import ConsoleSettings
from console.proxy import proxy
from idp_common.errors import ProblemError, install_error_handlers
from idp_common.http_methods import HeadAsGetMiddleware, OptionsMiddleware
from idp_common.request_context import RequestIdMiddleware
from idp_common.request_guards import BodyGuardMiddleware
from idp_common.security_headers import STATIC_SECURITY_HEADERS, SecurityHeadersMiddleware
from idp_common.settings import variable_name
from idp_common.tls import client_tls

NAME = "console"
PROXIED_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
# Upstream answers may take long (a log stream stays open for the whole run): no read
# timeout, but a bounded connect so a stopped service is a quick 502.
UPSTREAM_TIMEOUT = httpx.Timeout(connect=5.0, read=None, write=30.0, pool=10.0)
# One upstream connection per request in flight, as a reverse proxy opens them: a cap would
# let as many open log streams (people watching runs) hold every connection, and every
# other request wait for one and fail (httpx's default cap is 100).
UPSTREAM_LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=20)
NO_STORE = {"Cache-Control": "no-store"}


def client_config(settings: ConsoleSettings) -> dict[str, Any]:
    """What the browser app needs to know: how to sign in, where traces are."""
    auth: dict[str, Any] = (
        {"mode": "development"}
        if settings.development
        else {
            "mode": "oidc",
            "authority": settings.oidc_authority,
            "client_id": settings.oidc_client_id,
            "scope": settings.oidc_scope,
        }
    )
    return {"environment": settings.environment, "auth": auth, "jaeger_url": settings.jaeger_url}


def create_app(settings: ConsoleSettings | None = None) -> FastAPI:
    settings = settings or ConsoleSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(
            timeout=UPSTREAM_TIMEOUT,
            limits=UPSTREAM_LIMITS,
            follow_redirects=False,
            verify=client_tls(),
        ) as http:
            app.state.http = http
            yield

    app = FastAPI(title=NAME, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.upstreams = settings.upstreams()
    install_error_handlers(app)
    app.add_middleware(
        BodyGuardMiddleware,
        max_bytes=settings.max_body_bytes,
        setting=variable_name(ConsoleSettings, ("max_body_bytes",)),
    )
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(OptionsMiddleware)
    app.add_middleware(SecurityHeadersMiddleware, headers=STATIC_SECURITY_HEADERS)
    app.add_middleware(RequestIdMiddleware)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> dict[str, str]:
        """Ready once the built app is there (the services answer for themselves)."""
        _built_index(settings)
        return {"status": "ready"}

    @app.get("/console-config.json", include_in_schema=False)
    async def console_config() -> Response:
        return JSONResponse(client_config(settings), headers=NO_STORE)

    if settings.development:
        app.include_router(dev_sign_in.router)
    app.add_api_route(
        "/api/v1/{path:path}", proxy, methods=PROXIED_METHODS, include_in_schema=False
    )
    _serve_app(app, settings)
    return app


class NotBuilt(ProblemError):
    status_code, title, slug = 503, "Service Unavailable", "console-not-built"


def _built_index(settings: ConsoleSettings) -> Path:
    index = settings.app_dir / "index.html"
    if not index.is_file():
        raise NotBuilt(f"The console is not built: {index} is missing (run make install).")
    return index


def page_headers(settings: ConsoleSettings) -> dict[str, str]:
    """The app's page: never cached, never framed (clickjacking), and allowed to load and
    call only this origin (and the identity provider, to sign in). Scripts may evaluate
    code: the forms' validator (ajv) compiles each panel's JSON Schema into a function."""
    provider = ""
    if settings.oidc_authority:
        parts = urllib.parse.urlsplit(settings.oidc_authority)
        provider = f" {parts.scheme}://{parts.netloc}"
    policy = (
        "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data:; connect-src 'self'{provider}; form-action 'self'{provider}; "
        "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    )
    return NO_STORE | {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def _serve_app(app: FastAPI, settings: ConsoleSettings) -> None:
    """The built files; any other path is the app's (it routes in the browser)."""
    headers = page_headers(settings)
    assets = settings.app_dir / "assets"
    if assets.is_dir():
        app.mount("/assets", StaticFiles(directory=assets), name="assets")

    @app.get("/{path:path}", include_in_schema=False)
    async def single_page_app(path: str) -> Response:
        return FileResponse(_built_index(settings), headers=headers)
