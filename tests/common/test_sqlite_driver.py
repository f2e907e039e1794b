"""The one-trip aiosqlite adaptation answers like the stock one, in fewer thread hops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiosqlite.core
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from idp_common.db import Database
from idp_common.sqlite_driver import OneTripDBAPI


@pytest.fixture
async def db(tmp_path: Path) -> Any:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'one-trip.db'}")
    assert isinstance(database.engine.sync_engine.dialect.loaded_dbapi, OneTripDBAPI)
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


async def test_one_thread_hop_per_statement(db: Database, hops: list[str]) -> None:
    async with db.transaction() as session:
        await session.execute(text("select 1"))
        hops.clear()
        for _ in range(3):
            await session.execute(text("select v from t"))
        assert len(hops) == 3


async def test_a_transaction_of_one_statement_is_two_hops(db: Database, hops: list[str]) -> None:
    async with db.transaction() as session:  # BEGIN IMMEDIATE travels with the statement
        await session.execute(text("insert into t (v) values ('one')"))
    assert hops == ["_execute", "commit"]  # and the pool's reset after the commit makes none
    async with db.snapshot() as session:  # reads have connections of their own: one opens
        await session.execute(text("select 1"))
    hops.clear()
    async with db.snapshot() as session:
        assert (await session.execute(text("select count(*) from t"))).scalar() == 1
    assert hops == ["_execute", "rollback"]
    hops.clear()
    async with db.transaction():  # nothing ran: no BEGIN, no COMMIT
        pass
    assert hops == []


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
        assert await write_is_locked_out(tmp_path / "one-trip.db")


async def test_a_streamed_result_runs_inside_the_transaction(db: Database, tmp_path: Path) -> None:
    async with db.transaction() as session:
        await session.execute(text("insert into t (v) values ('a'), ('b')"))
    async with db.transaction() as session:  # the stock server-side cursor comes first here
        streamed = await session.stream(text("select v from t order by v"))
        assert [row.v async for row in streamed] == ["a", "b"]
        assert await write_is_locked_out(tmp_path / "one-trip.db")
