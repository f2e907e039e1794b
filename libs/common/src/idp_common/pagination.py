"""Cursor pagination: newest first, keyset on (created_at, id), opaque cursors."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, literal, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.errors import ValidationFailed, field_error

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


class PageParams(BaseModel):
    limit: int
    cursor: str | None


def _page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200, description="From next_cursor.")] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


PageParamsDep = Annotated[PageParams, Depends(_page_params)]


def encode_cursor(created_at: datetime, row_id: object) -> str:
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def text_id(value: object) -> str:
    """An id kept as the text it is (a queue's message id), for ``decode_cursor``."""
    if not isinstance(value, str):
        raise TypeError("an id is text")
    return value


def decode_cursor(cursor: str, id_type: Callable[[str], Any] = uuid.UUID) -> tuple[datetime, Any]:
    """A cursor's (time, id); ``id_type`` reads the id (a UUID unless told)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, row_id = json.loads(raw)
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None:
            # Every cursor made here names its offset; a naive time compared with the
            # aware ones of a list kept in memory (dead letters) was a 500.
            raise ValueError("a cursor's time names its offset")
        # The same instant; beyond UTC's years, OverflowError.
        return moment.astimezone(UTC), id_type(row_id)
    # AttributeError: an id that is no string (uuid.UUID(1))
    except (
        binascii.Error,
        ValueError,
        TypeError,
        AttributeError,
        OverflowError,
        UnicodeDecodeError,
    ) as exc:
        raise ValidationFailed(
            "The cursor is not one this API produced.",
            errors=[field_error("cursor", "invalid cursor")],
        ) from exc


async def paginate(
    session: AsyncSession, stmt: Select[Any], model: Any, params: PageParams
) -> tuple[Sequence[Any], str | None]:
    """Run ``stmt`` (selecting ``model``) one page at a time, newest first."""
    if params.cursor:
        created_at, row_id = decode_cursor(params.cursor)
        stmt = stmt.where(
            tuple_(model.created_at, model.id) < tuple_(literal(created_at), literal(row_id))
        )
    stmt = stmt.order_by(model.created_at.desc(), model.id.desc()).limit(params.limit + 1)
    rows = (await session.scalars(stmt)).all()
    if len(rows) <= params.limit:
        return rows, None
    last = rows[params.limit - 1]
    return rows[: params.limit], encode_cursor(last.created_at, last.id)
