"""The idempotent intake of API creates (submissions, executions).

A create finds what it targets on a snapshot (outside SQLite's single write turn, which the
other creates' writes and the workers' claims and results need), answers a repeated
Idempotency-Key with what the first request created, checks and builds the new object with
no session open (a check may call another service), then hands it to a group commit:
creates that arrive while a write is in flight share the next transaction, one INSERT per
table for all of them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Generic, TypeVar

from nacl.public import PublicKey
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.auth import Principal
from idp_common.db import Database
from idp_common.group_commit import GroupCommit
from idp_common.idempotency import IdempotentRepository
from idp_common.unit_of_work import UnitOfWork

Request = TypeVar("Request")
Target = TypeVar("Target")
New = TypeVar("New")
Created = TypeVar("Created")
# Creates written in one transaction at most (each client waits for one create at a time,
# so a group is as large as the number of clients waiting).
MAX_GROUP = 100


class IdempotentIntake(ABC, Generic[Request, Target, New, Created]):
    """Creates ``Created`` objects for API clients (see the module's docstring). Secret
    values are sealed to the workers' key (``seal_to``) before anything is stored."""

    repository: type[IdempotentRepository[Any]]

    def __init__(self, db: Database, seal_to: PublicKey) -> None:
        self.db = db
        self.seal_to = seal_to
        self._writes = GroupCommit(db, self.write, max_items=MAX_GROUP)

    @abstractmethod
    async def target(self, session: AsyncSession, principal: Principal, request: Request) -> Target:
        """What the request creates something of (a panel, a template), read on a snapshot."""

    @abstractmethod
    def fingerprint(self, target: Target, request: Request) -> str:
        """The request's digest, compared with the first request's on a repeated key."""

    @abstractmethod
    async def build(
        self, target: Target, principal: Principal, request: Request, key: str | None, digest: str
    ) -> New:
        """The checked object to write, with what is written beside it (its event, audit)."""

    @abstractmethod
    def created(self, new: New) -> Created:
        """The object ``new`` writes, as the API returns it."""

    @abstractmethod
    async def write(self, work: UnitOfWork, group: list[New]) -> None:
        """Write a group of checked objects, in one transaction."""

    async def create(
        self, principal: Principal, request: Request, key: str | None
    ) -> tuple[Created, bool]:
        """The object created and True, or the one an earlier request with this
        Idempotency-Key created and False (a 409 when it had another body)."""
        async with self.db.snapshot() as session:
            target = await self.target(session, principal, request)
            digest = self.fingerprint(target, request)
            earlier = await self.repository(session, principal.tenant).replay(
                key, digest, principal.subject
            )
        if earlier is not None:
            return earlier, False
        new = await self.build(target, principal, request, key, digest)
        try:
            await self._writes.submit(new)
        except IntegrityError:
            # The key was taken since the snapshot: by the same request sent twice at once,
            # which gets the original, or by another body (409).
            if key is None:
                raise
            async with self.db.snapshot() as session:
                earlier = await self.repository(session, principal.tenant).replay(
                    key, digest, principal.subject
                )
            if earlier is None:
                raise
            return earlier, False
        return self.created(new), True
