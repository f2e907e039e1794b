"""The options cache's lock across replicas (real Redis): a replica releases only the lock it
took. Releasing by name alone, one that had waited past the lock's time deleted the
holder's lock on its way out, and one whose lock had expired deleted the next holder's:
either way a third replica then filled the same entry with one more upstream call."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

import datasource_svc.sources.cache as cache
from datasource_svc.sources.cache import RedisStore
from tests.harness import REDIS_URL


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"test:{uuid.uuid4().hex}:"


async def test_a_replica_that_waited_past_the_lock_leaves_the_holders_lock(
    redis: Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "LOCK_SECONDS", 1)
    name = f"{prefix}lock:regions"
    await redis.set(name, "the holder", ex=60)  # another replica, filling the entry slowly
    async with RedisStore(redis, prefix).lock("regions"):
        pass  # it waited its second, then went on without the lock
    assert await redis.get(name) == b"the holder"
    await redis.delete(name)


async def test_a_replica_whose_lock_expired_leaves_the_next_holders_lock(
    redis: Redis, prefix: str
) -> None:
    name = f"{prefix}lock:regions"
    store = RedisStore(redis, prefix)
    async with store.lock("regions"):
        await redis.set(name, "the next holder", ex=60)  # its own expired; another took it
    assert await redis.get(name) == b"the next holder"
    await redis.delete(name)


async def test_a_replica_releases_its_own_lock(redis: Redis, prefix: str) -> None:
    store = RedisStore(redis, prefix)
    async with store.lock("regions"):
        assert await redis.exists(f"{prefix}lock:regions")
    assert not await redis.exists(f"{prefix}lock:regions")
    async with store.lock("regions"):  # and can take it again at once
        pass
