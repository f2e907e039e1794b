"""Annotated dependencies shared by the services' endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.db import Database


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    db: Database = request.app.state.db
    if request.method in SAFE_METHODS:
        async with db.snapshot(limited=False) as session:
            yield session
    else:
        async with db.transaction() as session:
            yield session


async def _read_session(request: Request) -> AsyncIterator[AsyncSession]:
    db: Database = request.app.state.db
    async with db.snapshot(limited=False) as session:
        yield session


SAFE_METHODS = frozenset({"GET", "HEAD"})
# scope="function": the transaction commits before the response is sent, so a client never
# sees a 2xx for work that then fails to commit. Reads get a snapshot: they never queue
# behind writes.
SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]
# For a POST that only reads (its input does not fit a query string) and may wait on another
# service meanwhile: a write transaction would hold SQLite's write turn for that long.
ReadSessionDep = Annotated[AsyncSession, Depends(_read_session, scope="function")]
