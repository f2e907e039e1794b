"""The aiosqlite adaptation answers like the stock one with its statements run on the event
loop's thread, and waits for another connection's lock without stalling the loop."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiosqlite.core
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from idp_common import sqlite_driver
from idp_common.db import Database
from idp_common.sqlite_driver import InlineDBAPI


@pytest.fixture
async def db(tmp_path: Path) -> Any:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    assert isinstance(database.engine.sync_engine.dialect.loaded_dbapi, InlineDBAPI)
    async with database.transaction() as session:
        await session.execute(text("create table t (id integer primary key, v text unique)"))
    yield database
    await database.dispose()


async def test_rows_counts_returning_and_executemany(db: Database) -> None:
    async with db.transaction() as session:
        inserted = await session.execute(text("insert into t (v) values ('a')"))
        assert inserted.rowcount == 1  # type: ignore[attr-defined]
        await session.execute(text("insert into t (v) values (:v)"), [{"v": "b"}, {"v": "c"}])
        returned = await session.execute(text("update t set v = v || '!' returning v"))
        assert sorted(returned.scalars()) == ["a!", "b!", "c!"]
    async with db.transaction() as session:
        assert (await session.execute(text("select count(*) from t"))).scalar() == 3
        empty = await session.execute(text("select v from t where id < 0"))
        assert empty.all() == []


async def test_errors_are_adapted_and_roll_back(db: Database) -> None:
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            await session.execute(text("insert into t (v) values ('x')"))
            await session.execute(text("insert into t (v) values ('x')"))
    async with db.transaction() as session:
        assert (await session.execute(text("select count(*) from t"))).scalar() == 0


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The calls made on aiosqlite's thread, by name."""
    made: list[str] = []
    execute = aiosqlite.core.Connection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(getattr(fn, "__name__", repr(fn)))
        return await execute(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.core.Connection, "_execute", counted)
    return made


async def test_statements_commits_and_rollbacks_make_no_thread_hop(
    db: Database, hops: list[str]
) -> None:
    async with db.transaction() as session:  # BEGIN IMMEDIATE comes with the statement
        await session.execute(text("insert into t (v) values ('one')"))
        for _ in range(3):
            await session.execute(text("select v from t"))
    async with db.snapshot() as session:  # reads have connections of their own: one opens
        await session.execute(text("select 1"))
    hops.clear()
    async with db.snapshot() as session:
        assert (await session.execute(text("select count(*) from t"))).scalar() == 1
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            await session.execute(text("insert into t (v) values ('one')"))
    assert hops == []


async def test_a_locked_database_is_waited_for_on_the_event_loop(
    db: Database, tmp_path: Path
) -> None:
    other = Database(str(db.engine.url))  # another connection to the file, as another process
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold_the_write_lock() -> None:
        async with other.transaction() as session:
            await session.execute(text("insert into t (v) values ('first')"))
            holding.set()
            await release.wait()  # needs the event loop to run on

    async def write_after_it() -> None:
        async with db.transaction() as session:
            await session.execute(text("insert into t (v) values ('second')"))

    async with asyncio.timeout(10):
        holder = asyncio.create_task(hold_the_write_lock())
        await holding.wait()
        waiter = asyncio.create_task(write_after_it())
        await asyncio.sleep(0.1)  # the loop runs while the waiter waits for the lock
        assert not waiter.done()
        release.set()
        await asyncio.gather(holder, waiter)
    async with db.snapshot() as session:
        assert (await session.execute(text("select v from t order by id"))).scalars().all() == [
            "first",
            "second",
        ]
    await other.dispose()


async def test_a_lock_held_past_the_wait_is_an_error(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_driver, "LOCK_WAIT_SECONDS", 0.2)
    other = Database(str(db.engine.url))
    async with other.transaction() as holding:
        await holding.execute(text("insert into t (v) values ('held')"))
        with pytest.raises(OperationalError, match="locked"):
            async with db.transaction() as session:
                await session.execute(text("insert into t (v) values ('refused')"))
    async with db.transaction() as session:  # and the connection is fine afterwards
        await session.execute(text("insert into t (v) values ('later')"))
    await other.dispose()


async def test_after_a_wait_in_vain_the_next_writes_try_once_until_one_gets_through(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writes queued for the write turn behind a lock another process holds each waited
    their own LOCK_WAIT_SECONDS in turn: a create's 503 came after a minute, the last of
    the queue's after several."""
    monkeypatch.setattr(sqlite_driver, "LOCK_WAIT_SECONDS", 0.2)
    tries: list[str] = []
    execute = sqlite_driver._execute

    def counted(connection: Any, begin: str | None, operation: str, parameters: Any) -> Any:
        tries.append(operation)
        return execute(connection, begin, operation, parameters)

    monkeypatch.setattr(sqlite_driver, "_execute", counted)

    async def write(value: str) -> None:
        async with db.transaction() as session:
            await session.execute(text(f"insert into t (v) values ('{value}')"))

    other = Database(str(db.engine.url))
    async with other.transaction() as holding:
        await holding.execute(text("insert into t (v) values ('held')"))
        for value in ("waited", "at-once", "at-once-too"):
            with pytest.raises(OperationalError, match="locked"):
                await write(value)
    assert tries.count("insert into t (v) values ('waited')") > 1
    assert tries.count("insert into t (v) values ('at-once')") == 1
    assert tries.count("insert into t (v) values ('at-once-too')") == 1
    await write("through")  # the lock is gone: it gets through, and waits again next time
    async with other.transaction() as holding:
        await holding.execute(text("insert into t (v) values ('held again')"))
        with pytest.raises(OperationalError, match="locked"):
            await write("waits again")
    assert tries.count("insert into t (v) values ('waits again')") > 1
    await other.dispose()


async def write_is_locked_out(path: Path) -> bool:
    """Whether another connection is refused the file's write lock right now."""
    other = await aiosqlite.connect(path, timeout=0)
    try:
        await other.execute("insert into t (v) values ('elsewhere')")
        await other.commit()
        return False
    except aiosqlite.OperationalError as error:
        return "locked" in str(error)
    finally:
        await other.close()


async def test_the_deferred_begin_still_takes_the_write_lock_first(
    db: Database, tmp_path: Path
) -> None:
    async with db.transaction() as session:
        await session.execute(text("select 1"))  # BEGIN IMMEDIATE: the file's write lock
        assert await write_is_locked_out(tmp_path / "inline.db")


async def test_a_streamed_result_runs_inside_the_transaction(db: Database, tmp_path: Path) -> None:
    async with db.transaction() as session:
        await session.execute(text("insert into t (v) values ('a'), ('b')"))
    async with db.transaction() as session:  # the stock server-side cursor comes first here
        streamed = await session.stream(text("select v from t order by v"))
        assert [row.v async for row in streamed] == ["a", "b"]
        assert await write_is_locked_out(tmp_path / "inline.db")
