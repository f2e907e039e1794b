"""The options cache: Redis when configured, else in-process (the embedded default).

Fresh entries expire after the source's TTL; a last-good copy of every entry is kept much
longer, to be served (marked stale) when the upstream fails. Filling a missing entry is
coalesced: within a process by one in-flight future per key, across replicas by a short
Redis lock, so concurrent cold requests make one upstream call."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from redis.asyncio import Redis

STALE_TTL_SECONDS = 7 * 24 * 3600
LOCK_SECONDS = 30
MEMORY_ENTRIES = 10_000

Payload = dict[str, Any]


class CacheStore(Protocol):
    async def get(self, key: str) -> Payload | None: ...

    async def set(self, key: str, payload: Payload, ttl_seconds: int) -> None: ...

    def lock(self, key: str) -> contextlib.AbstractAsyncContextManager[None]: ...

    async def ping(self) -> None: ...


class MemoryStore:
    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[float, Payload]] = OrderedDict()

    async def get(self, key: str) -> Payload | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        self._entries.move_to_end(key)
        return entry[1]

    async def set(self, key: str, payload: Payload, ttl_seconds: int) -> None:
        self._entries[key] = (time.monotonic() + ttl_seconds, payload)
        self._entries.move_to_end(key)
        while len(self._entries) > MEMORY_ENTRIES:
            self._entries.popitem(last=False)

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        yield  # one process: the in-flight futures already coalesce

    async def ping(self) -> None:
        return None


# Deletes the lock only if it is still the one this replica took: one that expired may
# have been taken by another replica since.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"


class RedisStore:
    def __init__(self, redis: Redis, prefix: str = "idp:options:") -> None:
        self.redis = redis
        self.prefix = prefix
        self._release = redis.register_script(_RELEASE)

    async def get(self, key: str) -> Payload | None:
        raw = await self.redis.get(self.prefix + key)
        return json.loads(raw) if raw else None

    async def set(self, key: str, payload: Payload, ttl_seconds: int) -> None:
        await self.redis.set(self.prefix + key, json.dumps(payload), ex=max(ttl_seconds, 1))

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        """Held by one replica while it fills ``key``; the others wait for its result, or go
        on without the lock after ``LOCK_SECONDS`` (and then leave the holder's alone)."""
        name = f"{self.prefix}lock:{key}"
        token = secrets.token_hex(16)
        deadline = time.monotonic() + LOCK_SECONDS
        while not (held := await self.redis.set(name, token, nx=True, ex=LOCK_SECONDS)):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        try:
            yield
        finally:
            if held:
                await self._release(keys=[name], args=[token])

    async def ping(self) -> None:
        await self.redis.ping()


class OptionsCache:
    def __init__(self, store: CacheStore) -> None:
        self.store = store
        self._in_flight: dict[str, asyncio.Future[Payload]] = {}

    async def fresh(self, key: str) -> Payload | None:
        return await self.store.get(f"fresh:{key}")

    async def last_good(self, key: str) -> Payload | None:
        return await self.store.get(f"stale:{key}")

    async def remember(self, key: str, payload: Payload, ttl: int) -> None:
        if ttl > 0:
            await self.store.set(f"fresh:{key}", payload, ttl)
        await self.store.set(f"stale:{key}", payload, STALE_TTL_SECONDS)

    async def coalesced(
        self, key: str, fill: Callable[[], Awaitable[Payload]]
    ) -> tuple[Payload, bool]:
        """Run ``fill`` once for all concurrent callers asking for ``key``; returns its
        result and whether this caller shared another's call."""
        if key in self._in_flight:
            return await asyncio.shield(self._in_flight[key]), True
        future: asyncio.Future[Payload] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            async with self.store.lock(key):
                result = await fill()
            future.set_result(result)
            return result, False
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here when nobody else waited
            raise
        finally:
            del self._in_flight[key]
