"""A value that must be unique (a slug in its tenant, an environment variable in its
template) is claimed by the write that stores it: the database's constraint decides, and
the request that loses gets a 409 naming the field.

A lookup before the write cannot decide: on PostgreSQL two requests sent at once both find
the value free, and the second INSERT violated the constraint (a 500). On SQLite they took
the single write turn one after the other, so this is the same answer on both backends."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Index, Table, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute

from idp_common.errors import Conflict, field_error

SLUG_LENGTH = 100  # the slug columns' String(100)


class Unique:
    """The unique constraint (or unique index) of a table on ``columns``, as the ``field``
    of a request whose value it keeps from repeating."""

    def __init__(self, *columns: InstrumentedAttribute[Any], field: str) -> None:
        names = [column.key for column in columns]
        table: Table = columns[0].parent.local_table  # type: ignore[assignment]
        constraints = [*table.constraints, *(index for index in table.indexes if index.unique)]
        found = [
            each
            for each in constraints
            if isinstance(each, UniqueConstraint | Index)
            and [column.name for column in each.columns] == names
        ]
        assert len(found) == 1, f"{table.name} has no unique constraint on {names}"
        self.field = field
        self.name = found[0].name
        # SQLite names no constraint, only the columns (in the constraint's order).
        self._sqlite_message = "UNIQUE constraint failed: " + ", ".join(
            f"{table.name}.{name}" for name in names
        )

    def _violated_by(self, error: IntegrityError) -> bool:
        # asyncpg's error (the cause of the DBAPI one SQLAlchemy wraps) names the constraint.
        cause = None if error.orig is None else error.orig.__cause__
        if (named := getattr(cause, "constraint_name", None)) is not None:
            return bool(named == self.name)
        return str(error.orig) == self._sqlite_message

    @asynccontextmanager
    async def claimed(self, detail: str) -> AsyncIterator[None]:
        """Around the statement that stores the value (a flush): when the value is taken,
        a 409 saying ``detail`` for the field. Any other integrity error goes on."""
        try:
            yield
        except IntegrityError as error:
            if not self._violated_by(error):
                raise
            raise Conflict(detail, errors=[field_error(self.field, detail, "unique")]) from None


def freed_slug(slug: str, object_id: uuid.UUID) -> str:
    """The slug a soft-deleted object keeps instead of its own, which a new object may then
    take: unique by the object's whole id, the slug cut to make room for it. (The id's first
    8 digits after the whole slug, cut to the column, were cut off a slug of 91 characters
    or more: deleting a second object of it was a 500, and one of 100 stayed taken.)"""
    suffix = f"~deleted~{object_id.hex}"
    return slug[: SLUG_LENGTH - len(suffix)] + suffix
