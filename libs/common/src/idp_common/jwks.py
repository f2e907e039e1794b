"""The identity provider's signing keys, fetched from its JWKS URL and cached.

A token naming an unknown ``kid`` triggers an early refetch (the provider rotated its keys),
but at most once per ``min_refresh_seconds``: tokens with invented kids must not turn every
request into a call to the provider. When a fetch fails the keys already known stay in use.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import jwt

from idp_common.clock import SYSTEM_CLOCK, Clock
from idp_common.errors import Unauthorized, Unavailable

logger = logging.getLogger(__name__)
FETCH_TIMEOUT_SECONDS = 5.0


class JwksCache:
    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float,
        min_refresh_seconds: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._url = url
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._min_refresh_seconds = min_refresh_seconds
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> jwt.PyJWK:
        since = self._clock.monotonic() - self._attempted_at
        unknown = kid not in self._keys
        if since > self._cache_seconds or (unknown and since >= self._min_refresh_seconds):
            await self._refresh(self._attempted_at)
        if not self._keys:
            raise Unavailable("The identity provider's signing keys cannot be fetched.")
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        try:
            return self._keys[kid]
        except KeyError:
            raise Unauthorized(f"Invalid token: unknown signing key {kid!r}") from None

    async def _refresh(self, seen_attempt: float) -> None:
        async with self._lock:
            if self._attempted_at != seen_attempt:
                return  # another request refreshed while this one waited
            self._attempted_at = self._clock.monotonic()
            try:
                async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_SECONDS) as client:
                    response = await client.get(self._url)
                    response.raise_for_status()
                keys = jwt.PyJWKSet.from_dict(response.json()).keys
            except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
                logger.warning("JWKS fetch from %s failed: %s", self._url, exc)
                return
            self._keys = {key.key_id: key for key in keys}
