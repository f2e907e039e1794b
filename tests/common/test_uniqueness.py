"""A unique value claimed by its write: the constraint it violates, named by PostgreSQL and
by its columns on SQLite, is the 409 naming the field; any other constraint stays an
error (a bug, not the client's input)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from idp_common.db import Database, new_metadata
from idp_common.errors import Conflict
from idp_common.uniqueness import Unique
from tests.harness import fresh_database


class Base(DeclarativeBase):
    metadata = new_metadata()


class Shelf(Base):
    __tablename__ = "shelves"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)


class Book(Base):
    __tablename__ = "books"
    __table_args__ = (
        UniqueConstraint("shelf", "title"),
        Index("uq_books_isbn", "isbn", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shelf: Mapped[str] = mapped_column(ForeignKey("shelves.name"))
    title: Mapped[str] = mapped_column(String(20))
    isbn: Mapped[str] = mapped_column(String(20))


TITLE = Unique(Book.shelf, Book.title, field="title")
ISBN = Unique(Book.isbn, field="isbn")


async def _store(db: Database, unique: Unique, book: Book) -> None:
    async with db.transaction() as session:
        session.add(book)
        async with unique.claimed("taken"):
            await session.flush()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_the_claimed_constraint_is_a_409_naming_its_field_and_no_other_is(
    backend: str, tmp_path: Path
) -> None:
    async with fresh_database(backend, tmp_path, "uniqueness") as url:
        db = Database(url)
        async with db.engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        async with db.transaction() as session:
            session.add(Shelf(name="a"))
        await _store(db, TITLE, Book(id=1, shelf="a", title="t", isbn="1"))

        with pytest.raises(Conflict) as taken:
            await _store(db, TITLE, Book(id=2, shelf="a", title="t", isbn="2"))
        assert taken.value.errors == [{"field": "title", "message": "taken", "code": "unique"}]
        with pytest.raises(Conflict) as taken:  # a unique index, named as such
            await _store(db, ISBN, Book(id=2, shelf="a", title="u", isbn="1"))
        assert taken.value.errors == [{"field": "isbn", "message": "taken", "code": "unique"}]

        for other in (
            Book(id=2, shelf="a", title="u", isbn="1"),  # another unique constraint
            Book(id=1, shelf="a", title="u", isbn="2"),  # the primary key
            Book(id=2, shelf="b", title="u", isbn="2"),  # a foreign key
        ):
            with pytest.raises(IntegrityError):
                await _store(db, TITLE, other)
        await db.dispose()
