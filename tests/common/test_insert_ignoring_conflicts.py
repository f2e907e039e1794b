"""INSERT … ON CONFLICT DO NOTHING (inboxes, log lines, schedule runs): new rows stored and
returned, existing ones left alone, on both backends; and a statement SQLAlchemy caches,
so it is not compiled again at every use."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Column, MetaData, String, Table, select

from idp_common.db import (
    Database,
    _ignoring_conflicts,
    insert_at_commit_ignoring_conflicts,
    insert_new,
)
from tests.harness import fresh_database

METADATA = MetaData()
SEEN = Table(
    "seen",
    METADATA,
    Column("consumer", String(40), primary_key=True),
    Column("event_id", String(40), primary_key=True),
    Column("note", String(40), nullable=True),
)


async def test_new_rows_are_stored_and_returned_and_existing_ones_left_alone(
    backend: str, tmp_path: Path
) -> None:
    async with fresh_database(backend, tmp_path, "conflicts") as url:
        db = Database(url)
        async with db.engine.begin() as connection:
            await connection.run_sync(METADATA.create_all)
        async with db.transaction() as session:
            first = [{"consumer": "c", "event_id": "a", "note": "first"}]
            assert await insert_new(session, SEEN, first, "event_id") == {"a"}
        async with db.transaction() as session:
            rows = [
                {"consumer": "c", "event_id": "a", "note": "again"},
                {"consumer": "c", "event_id": "b", "note": "new"},
            ]
            assert await insert_new(session, SEEN, rows, "event_id") == {"b"}
            insert_at_commit_ignoring_conflicts(
                session, SEEN, {"consumer": "c", "event_id": "b", "note": "at commit"}
            )
            insert_at_commit_ignoring_conflicts(
                session, SEEN, {"consumer": "d", "event_id": "b", "note": "at commit"}
            )
        async with db.snapshot() as session:
            stored = (await session.execute(select(SEEN).order_by("consumer", "event_id"))).all()
        assert [tuple(row) for row in stored] == [
            ("c", "a", "first"),
            ("c", "b", "new"),
            ("d", "b", "at commit"),
        ]
        await db.dispose()


def test_the_statement_has_a_cache_key_so_sqlalchemy_compiles_it_once() -> None:
    for returning in (None, "event_id"):
        assert _ignoring_conflicts(SEEN, returning)._generate_cache_key() is not None  # type: ignore[attr-defined]
