"""The parts every service's FastAPI app shares: errors, request ids, body cap, health,
auth verifier, tracing and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi_offline import FastAPIOffline

from idp_common import health, whoami
from idp_common.api_keys import RemoteApiKeyVerifier
from idp_common.auth import TokenVerifier
from idp_common.errors import document_problems, install_error_handlers
from idp_common.http_methods import HeadAsGetMiddleware, OptionsMiddleware
from idp_common.rate_limit import RateLimiter
from idp_common.request_context import RequestIdMiddleware
from idp_common.request_guards import BodyGuardMiddleware, NulInUrlMiddleware
from idp_common.security_headers import SecurityHeadersMiddleware
from idp_common.settings import ServiceSettings, variable_name
from idp_common.telemetry import configure_tracing, fastapi_telemetry, instrument_app
from idp_common.trailing_slash import TrailingSlashMiddleware


def build_service_app(
    *,
    name: str,
    description: str,
    settings: ServiceSettings,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    routers: Sequence[APIRouter],
    owns_api_keys: bool = False,
) -> FastAPI:
    """``owns_api_keys``: the service verifies keys itself (its lifespan sets
    ``app.state.api_key_verifier``) instead of asking ``AUTH_API_KEY_SERVICE_URL``."""
    configure_tracing(name)
    api_keys = (
        RemoteApiKeyVerifier(settings.auth.api_key_service_url)
        if settings.auth.api_key_service_url and not owns_api_keys
        else None
    )
    rate_limiter = RateLimiter(settings.rate_limit)

    @asynccontextmanager
    async def lifespan_closing_clients(app: FastAPI) -> AsyncIterator[None]:
        try:
            async with lifespan(app):
                yield
        finally:
            await rate_limiter.aclose()
            if api_keys is not None:
                await api_keys.aclose()

    # Swagger UI and ReDoc load their scripts from this service, not from a CDN: /docs
    # works on a closed network.
    app = FastAPIOffline(
        title=name,
        description=description,
        version="0.1.0",
        lifespan=lifespan_closing_clients,
        openapi_url="/openapi.json",
        telemetry=fastapi_telemetry(),
        redirect_slashes=False,  # see TrailingSlashMiddleware
    )
    app.state.settings = settings
    app.state.token_verifier = TokenVerifier(settings.auth)
    app.state.api_key_verifier = api_keys
    app.state.rate_limiter = rate_limiter
    app.state.readiness_checks = {}
    install_error_handlers(app)
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(
        BodyGuardMiddleware,
        max_bytes=settings.max_body_bytes,
        setting=variable_name(type(settings), ("max_body_bytes",)),
    )
    app.add_middleware(NulInUrlMiddleware)
    app.add_middleware(TrailingSlashMiddleware)
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(OptionsMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(health.router)
    app.include_router(whoami.router)
    for router in routers:
        app.include_router(router)
    instrument_app(app)
    return app
