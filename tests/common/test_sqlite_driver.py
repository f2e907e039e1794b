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


async def test_one_thread_hop_per_statement(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    hops = 0
    execute = aiosqlite.core.Connection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal hops
        hops += 1
        return await execute(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.core.Connection, "_execute", counted)
    async with db.transaction() as session:
        await session.execute(text("select 1"))  # after BEGIN IMMEDIATE (one hop too)
        hops = 0
        for _ in range(3):
            await session.execute(text("select v from t"))
        assert hops == 3
