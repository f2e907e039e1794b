"""The identity provider's signing keys, fetched from its JWKS URL and cached.

A token naming an unknown ``kid`` triggers an early refetch (the provider rotated its keys),
but at most once per ``min_refresh_seconds``: tokens with invented kids must not turn every
request into a call to the provider. When a fetch fails the keys already known stay in use.

A fetch is bounded as a whole, in time and in size: every request that needs a key waits on
it, so a provider trickling its answer, or answering without end, would hold them all.
"""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import jwt

from idp_common.clock import SYSTEM_CLOCK, Clock
from idp_common.content_decoding import read_capped
from idp_common.errors import Unauthorized, Unavailable
from idp_common.tls import client_tls

logger = logging.getLogger(__name__)
FETCH_TIMEOUT_SECONDS = 5.0
MAX_KEY_SET_BYTES = 1024 * 1024  # a provider's set holds a few keys of a few KiB


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
                keys = jwt.PyJWKSet.from_dict(await self._fetch()).keys
            except (
                httpx.HTTPError,
                TimeoutError,
                ValueError,
                RecursionError,
                jwt.PyJWTError,
            ) as exc:
                logger.warning("JWKS fetch from %s failed: %r", self._url, exc)
                return
            self._keys = {key.key_id: key for key in keys}

    async def _fetch(self) -> dict[str, object]:
        async with (
            asyncio.timeout(FETCH_TIMEOUT_SECONDS),
            httpx.AsyncClient(timeout=FETCH_TIMEOUT_SECONDS, verify=client_tls()) as client,
            client.stream("GET", self._url) as response,
        ):
            response.raise_for_status()
            body, cut = await read_capped(response, MAX_KEY_SET_BYTES)
        if cut:
            raise ValueError(f"the key set is larger than {MAX_KEY_SET_BYTES} bytes")
        key_set = json.loads(body)
        if not isinstance(key_set, dict):
            raise ValueError("the key set is not a JSON object")
        return key_set
