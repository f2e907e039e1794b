"""PostgreSQL connections the server closes (a restart, a terminated backend) are replaced
before a transaction uses them: the hiccup fails nothing that starts after it."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
from fastapi import FastAPI
from sqlalchemy import text

from idp_common.db import Database
from idp_common.unreachable_database import answer_unreachable_database_with_503
from tests.harness import eventually, fresh_database


async def backends_of(database: str) -> list[int]:
    admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        rows = await admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        return [row["pid"] for row in rows]
    finally:
        await admin.close()


async def terminate(pids: list[int]) -> None:
    admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        for pid in pids:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_transactions_after_the_servers_backends_were_terminated_succeed(
    tmp_path: Path,
) -> None:
    async with fresh_database("postgres", tmp_path, "operation") as url:
        db = Database(url, pool_size=2)
        database = url.rsplit("/", 1)[1]

        async def one_transaction() -> int:
            async with db.transaction() as session:
                return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())

        # Several connections in the pool, each used once.
        before = set(await asyncio.gather(*(one_transaction() for _ in range(4))))
        assert len(before) > 1
        await terminate(await backends_of(database))
        await eventually(lambda: _none_left(database))
        after = await asyncio.gather(*(one_transaction() for _ in range(8)))
        assert not before & set(after)  # every one on a new connection, none failed
        async with db.snapshot() as session:  # snapshots share the pool on PostgreSQL
            assert await session.scalar(text("SELECT 1")) == 1
        await db.dispose()


async def _none_left(database: str) -> bool:
    return not await backends_of(database)


def _terminated_without_yielding(database: str) -> None:
    """The database's backends terminated and gone, while this thread's event loop does not
    run: the server's parting messages wait unread on the pool's sockets, as they do when a
    transaction starts in the turn of the loop before asyncpg reads them."""

    def terminate_and_wait() -> None:
        asyncio.run(terminate(asyncio.run(backends_of(database))))
        while not asyncio.run(_none_left(database)):
            time.sleep(0.01)

    with ThreadPoolExecutor(1) as elsewhere:
        elsewhere.submit(terminate_and_wait).result()


async def test_a_connection_whose_server_hung_up_unnoticed_is_replaced(tmp_path: Path) -> None:
    async with fresh_database("postgres", tmp_path, "operation") as url:
        db = Database(url, pool_size=2)

        async def one_transaction() -> int:
            async with db.transaction() as session:
                return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())

        before = await one_transaction()
        _terminated_without_yielding(url.rsplit("/", 1)[1])
        assert await one_transaction() != before
        await db.dispose()


async def test_a_request_whose_connection_the_server_ends_is_a_503(tmp_path: Path) -> None:
    """A backend terminated in the middle of a request's transaction (pg_terminate_backend, a
    restart, a failover) was a 500: asyncpg's ConnectionDoesNotExistError reaches the app as
    a bare DBAPIError, which only says that SQLAlchemy invalidated the connection."""
    async with fresh_database("postgres", tmp_path, "operation") as url:
        db = Database(url, pool_size=2)
        app = FastAPI()
        answer_unreachable_database_with_503(app, url)

        async def terminated_once_sleeping(pid: int) -> None:
            async def sleeping() -> bool:
                admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
                try:
                    return bool(
                        await admin.fetchval(
                            "SELECT wait_event = 'PgSleep' FROM pg_stat_activity WHERE pid = $1",
                            pid,
                        )
                    )
                finally:
                    await admin.close()

            await eventually(sleeping)
            await terminate([pid])

        @app.get("/ended")
        async def ended() -> None:
            async with db.transaction() as session:
                pid = int(await session.scalar(text("SELECT pg_backend_pid()")))
                terminating = asyncio.create_task(terminated_once_sleeping(pid))
                try:
                    await session.execute(text("SELECT pg_sleep(60)"))
                finally:
                    await terminating

        @app.get("/refused")
        async def refused() -> None:
            async with db.transaction() as session:
                await session.execute(text("SELECT 1/0"))

        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/ended")
            other = await client.get("/refused")
        await db.dispose()
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert "database cannot be reached" in response.json()["detail"]
    assert other.status_code == 500  # a statement's own error is not the database's absence
