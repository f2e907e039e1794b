"""Rate limits per principal and route class, on a sliding window (the `limits` library's
moving window: exact, no burst at window edges). Counters live in Redis when one is
configured, so every replica shares them; in process otherwise (the embedded default).

Answers carry ``RateLimit-Limit``/``-Remaining``/``-Reset`` and ``RateLimit-Policy``; a
refusal is a 429 problem with ``Retry-After``. If Redis fails, requests are let through and
the failure is logged: a rate limiter must not take the platform down with it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from fastapi import Depends, Request, Response
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from idp_common.auth import CurrentPrincipal, Principal
from idp_common.errors import TooManyRequests
from idp_common.settings import RateLimitSettings
from idp_common.telemetry import instrument_redis

if TYPE_CHECKING:
    from redis.asyncio import ConnectionPool

logger = logging.getLogger(__name__)
RouteClass = Literal["submissions", "executions", "resolve"]


class RateLimiter:
    def __init__(self, settings: RateLimitSettings) -> None:
        self._pool: ConnectionPool | None = None
        storage: Storage = MemoryStorage()
        if settings.redis_url:
            from redis.asyncio import ConnectionPool  # only with Redis: see instrument_redis

            instrument_redis()
            self._pool = ConnectionPool.from_url(settings.redis_url)
            storage = RedisStorage(
                f"async+{settings.redis_url}",
                implementation="redispy",
                wrap_exceptions=True,
                connection_pool=self._pool,  # type: ignore[arg-type]  # passed to redis-py
            )
        self._window = MovingWindowRateLimiter(storage)
        self._limits: dict[str, RateLimitItem] = {
            route_class: parse(getattr(settings, route_class))
            for route_class in ("submissions", "executions", "resolve")
        }

    async def hit(self, route_class: RouteClass, principal: Principal) -> dict[str, str]:
        """Count one request; the headers to send, or TooManyRequests carrying them."""
        item = self._limits[route_class]
        # Escaped: joined by "/" as they were, tenant "a/b" and subject "c" shared the
        # bucket of tenant "a" and subject "b/c".
        key = "/".join(quote(name, safe="") for name in (principal.tenant, principal.subject))
        try:
            allowed = await self._window.hit(item, route_class, key)
            stats = await self._window.get_window_stats(item, route_class, key)
        except StorageError:
            logger.exception("rate limit storage unavailable; letting the request through")
            return {}
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        headers = {
            "RateLimit-Limit": str(item.amount),
            "RateLimit-Remaining": str(stats.remaining),
            "RateLimit-Reset": str(reset),
            "RateLimit-Policy": f"{item.amount};w={item.get_expiry()}",
        }
        if not allowed:
            raise TooManyRequests(
                f"Too many {route_class} requests: at most {item.amount} per "
                f"{item.get_expiry()} s (RATELIMIT_{route_class.upper()}). Retry in {reset} s.",
                headers=headers | {"Retry-After": str(reset)},
            )
        return headers

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


def rate_limited(
    route_class: RouteClass,
) -> Callable[..., Coroutine[Any, Any, None]]:
    async def dependency(request: Request, response: Response, principal: CurrentPrincipal) -> None:
        limiter: RateLimiter = request.app.state.rate_limiter
        response.headers.update(await limiter.hit(route_class, principal))

    return dependency


SubmissionRateLimit = Depends(rate_limited("submissions"))
ExecutionRateLimit = Depends(rate_limited("executions"))
ResolveRateLimit = Depends(rate_limited("resolve"))
