"""Annotated dependencies shared by the services' endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.db import Database


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    db: Database = request.app.state.db
    async with db.transaction() as session:
        yield session


# scope="function": the transaction commits before the response is sent, so a client never
# sees a 2xx for work that then fails to commit.
SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]
