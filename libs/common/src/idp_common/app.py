"""The parts every service's FastAPI app shares: errors, request ids, body cap, health,
auth verifier, tracing and metrics."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

from fastapi import APIRouter, FastAPI

from idp_common import health
from idp_common.auth import TokenVerifier
from idp_common.errors import install_error_handlers
from idp_common.request_context import BodySizeLimitMiddleware, RequestIdMiddleware
from idp_common.settings import ServiceSettings
from idp_common.telemetry import configure_tracing, instrument_app


def build_service_app(
    *,
    name: str,
    description: str,
    settings: ServiceSettings,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    routers: Sequence[APIRouter],
) -> FastAPI:
    configure_tracing(name)
    app = FastAPI(
        title=name,
        description=description,
        version="0.1.0",
        lifespan=lifespan,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.token_verifier = TokenVerifier(settings.auth)
    app.state.readiness_checks = {}
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(health.router)
    for router in routers:
        app.include_router(router)
    instrument_app(app)
    return app
