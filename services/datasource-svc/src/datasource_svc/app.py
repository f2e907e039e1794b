from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from datasource_svc.config import NAME, DatasourceSettings
from datasource_svc.models import AuditEntry
from datasource_svc.sources.cache import CacheStore, MemoryStore, OptionsCache, RedisStore
from datasource_svc.sources.endpoints import router as sources_router
from datasource_svc.sources.resolver import OptionsResolver
from idp_common.app import build_service_app
from idp_common.audit_api import audit_router
from idp_common.db import Database
from idp_common.errors import Unavailable, problem_response
from idp_common.secret_values import SecretResolver
from idp_common.telemetry import instrument_engines, instrument_redis
from idp_common.unreachable_database import (
    UNREACHABLE_RETRY_AFTER_SECONDS,
    answer_unreachable_database_with_503,
)

logger = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: DatasourceSettings = app.state.settings
    async with AsyncExitStack() as stack:
        db = Database(settings.database_url)
        stack.push_async_callback(db.dispose)
        instrument_engines(db.engines)
        app.state.db = db
        app.state.readiness_checks["database"] = db.ping
        store: CacheStore = MemoryStore()
        if settings.redis_url:
            from redis.asyncio import Redis  # only with Redis: see instrument_redis

            instrument_redis()
            redis = Redis.from_url(settings.redis_url, socket_timeout=2)
            stack.push_async_callback(redis.aclose)
            store = RedisStore(redis, settings.redis_key_prefix)
            app.state.readiness_checks["cache"] = store.ping
        app.state.resolver = OptionsResolver(
            OptionsCache(store),
            SecretResolver(settings.secret_store),
            allowed_hosts=settings.outbound_allowed_hosts,
            response_cap_bytes=settings.response_cap_bytes,
        )
        yield


def create_app(settings: DatasourceSettings | None = None) -> FastAPI:
    app = build_service_app(
        name=NAME,
        description="Dynamic data sources that fill the panels' dropdowns.",
        settings=settings or DatasourceSettings(),
        lifespan=lifespan,
        routers=[sources_router, audit_router(AuditEntry)],
    )
    answer_unreachable_database_with_503(app, app.state.settings.database_url)
    if app.state.settings.redis_url:
        _answer_unreachable_cache_with_503(app)
    return app


def _answer_unreachable_cache_with_503(app: FastAPI) -> None:
    """A lookup that finds Redis unreachable is a 503 naming it, not a 500. Not a call of the
    upstream without the cache: every lookup of every replica would reach it, uncoalesced,
    with no last-good copy to fall back on."""
    from redis import exceptions

    async def unavailable(_request: Request, exc: Exception) -> JSONResponse:
        logger.warning("options cache unreachable: %r", exc)
        return problem_response(
            Unavailable.status_code,
            Unavailable.title,
            "The options cache (DATASOURCE_REDIS_URL) cannot be reached right now; "
            "try again shortly.",
            slug=Unavailable.slug,
            headers={"Retry-After": str(UNREACHABLE_RETRY_AFTER_SECONDS)},
        )

    for error in (exceptions.ConnectionError, exceptions.TimeoutError):
        app.add_exception_handler(error, unavailable)
